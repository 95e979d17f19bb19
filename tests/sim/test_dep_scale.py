"""A page costs time proportional to the page, not to the number of devices (keyset paging, reference 6).

Checked by what the database is asked, not by a stopwatch (the machine is shared): every statement that serves
a page reads the devices through an index from the cursor's position, never a scan or an OFFSET that walks the
pages before it. The seconds per page at 10,000 and 200,000 devices are `bench/sim_fetch.py`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

from tests.sim.apple import DEPTestClient, ServerCredentials, seed_devices
from tests.simulator import RunningSimulator

DEVICES = 20_000
PAGE = 1000


def test_fetching_20000_devices_reads_each_page_from_its_cursor_by_index(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    serials = seed_devices(apple.state, server.server_id, DEVICES)
    fetched: list[str] = []
    pages = 0
    cursor = None
    while True:
        body = {"limit": PAGE, **({"cursor": cursor} if cursor else {})}
        with _statements(apple.state.engine) as statements:
            page = client.ok("POST", "/server/devices", json=body)
        pages += 1
        fetched += [device["serial_number"] for device in page["devices"]]
        cursor = page["cursor"]
        if not page["more_to_follow"]:
            break
    assert fetched == serials
    assert pages == DEVICES // PAGE
    # The last page's statements, planned by SQLite: the devices are searched from the cursor, not scanned.
    device_reads = [(sql, params) for sql, params in statements if "FROM sim_devices" in sql]
    assert device_reads, statements
    with apple.state.engine.connect() as connection:
        for sql, params in device_reads:
            # SQLAlchemy writes SQLite's LIMIT as "LIMIT ? OFFSET ?"; the offset must stay 0.
            assert "OFFSET" not in sql or params[-1] == 0, (sql, params)
            plan = [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
            device_steps = [step for step in plan if "sim_devices" in step]
            assert device_steps and all(step.startswith("SEARCH") for step in device_steps), plan
            assert not any("TEMP B-TREE" in step for step in plan), plan
    sync = client.ok("POST", "/devices/sync", json={"cursor": cursor})
    assert sync["devices"] == [] and sync["more_to_follow"] is False


@contextmanager
def _statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (with their parameters) that ``engine`` runs inside the block."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
