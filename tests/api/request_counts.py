"""What the schema-driven tests sent, per database and token: requests and 5xx answers, printed at the end of the
run (``tests/conftest.py``) so that a green run also says how much it tried
(``tests/api/test_schema_properties.py``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


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

    def as_property(self, database: str, mode: str) -> dict[str, object]:
        """What the run's summary prints of this run: a report property, so it comes from pytest-xdist's
        workers too."""
        return {
            "database": database,
            "mode": mode,
            "requests": self.requests,
            "operations": len(self.by_operation),
            "succeeded": self.succeeded,
            "server_errors": self.server_errors,
        }


#: The report property each schema-driven test leaves (:meth:`RunCounts.as_property`).
PROPERTY = "schema_requests"


def summary_lines(runs: list[dict[str, object]]) -> list[str]:
    """A line per database and token mode, from the runs' report properties."""
    return [
        f"{run['database']!s:<10} {run['mode']!s:<10} {run['requests']:>6} requests over {run['operations']:>2} "
        f"operations, {run['succeeded']} answered 2xx, {run['server_errors']} answered 5xx"
        for run in sorted(runs, key=lambda run: (str(run["database"]), str(run["mode"])))
    ]
