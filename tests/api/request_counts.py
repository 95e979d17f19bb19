"""What the schema-driven tests sent, per database and token: requests and 5xx answers, printed at the end of the
run so that a green run also says how much it tried (``tests/api/test_schema_properties.py``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest


@dataclass
class RunCounts:
    """One database and token mode: requests by operation, how many succeeded and how many answers were 5xx."""

    requests: int = 0
    succeeded: int = 0
    server_errors: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)

    def record(self, operation: str, status: int) -> None:
        self.requests += 1
        self.by_operation[operation] += 1
        if 200 <= status < 300:
            self.succeeded += 1
        if status >= 500:
            self.server_errors += 1


@dataclass
class SchemaRunCounts:
    """Every run of this pytest process, keyed by (database, token mode)."""

    runs: dict[tuple[str, str], RunCounts] = field(default_factory=dict)

    def for_run(self, database: str, mode: str) -> RunCounts:
        return self.runs.setdefault((database, mode), RunCounts())

    def summary_lines(self) -> list[str]:
        return [
            f"{database:<10} {mode:<10} {counts.requests:>6} requests over {len(counts.by_operation):>2} operations, "
            f"{counts.succeeded} answered 2xx, {counts.server_errors} answered 5xx"
            for (database, mode), counts in sorted(self.runs.items())
        ]


COUNTS_KEY = pytest.StashKey[SchemaRunCounts]()


def counts_of(config: pytest.Config) -> SchemaRunCounts:
    if COUNTS_KEY not in config.stash:
        config.stash[COUNTS_KEY] = SchemaRunCounts()
    return config.stash[COUNTS_KEY]
