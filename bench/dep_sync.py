"""A full DEP sync of many devices from the simulator, against a plain bulk insert of the same rows.

Starts `pippin sim apple` as its own process (so its HTTP work does not share this process's GIL) with the
devices seeded in bulk, connects a DEP token the way an admin does (key pair, MDM server, token download and
upload), assigns every device to the server, then:

1. times a full sync (``pippin.dep.sync.sync_now``: fetch pages of 1000, each applied and committed with its
   cursor), and the process's peak memory;
2. times a plain bulk insert of the same rows into the same database (the baseline), after deleting them;
3. changes one device at Apple and times an incremental sync (its cost should not grow with the fleet).

SQLite (a temporary file) by default; ``--database-url postgresql+psycopg://...`` uses a private schema that is
dropped at the end. Prints a line per stage and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import connected_world

from pippin.dep.sync import sync_now
from pippin.dep.token import dep_client_factory
from pippin.store.db import transaction
from pippin.store.models import Device

SERVER_NAME = "bench-server"


def rss_mb() -> float:
    """Resident memory now, from /proc (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1024 / 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def run(devices: int, database_url: str | None, work: Path) -> dict[str, Any]:
    with connected_world(devices, database_url, work, token_name=SERVER_NAME) as world:
        factory, settings, portal = world.factory, world.settings, world.portal
        opener = dep_client_factory(box=world.box, settings=settings)
        rss_before = rss_mb()
        started = time.perf_counter()
        result = sync_now(factory, token_name=SERVER_NAME, settings=settings, open_dep_client=opener)
        seconds = time.perf_counter() - started
        assert result.outcome == "succeeded" and result.added == world.assigned, result
        peak = peak_rss_mb()
        print(
            f"full sync: {result.added:,} devices in {seconds:.2f} s = {result.added / seconds:,.0f} devices/s, "
            f"{result.pages} pages; peak RSS {peak:.0f} MB (was {rss_before:.0f} MB before the sync)",
            flush=True,
        )

        # One change at Apple, then an incremental sync: its cost must not depend on the fleet's size.
        first = portal.get("/portal/devices", params={"server_uuid": world.server_uuid, "limit": 1}).json()
        serial = first["devices"][0]["serial_number"]
        portal.patch(f"/portal/devices/{serial}", json={"asset_tag": "BENCH-1"}).raise_for_status()
        started = time.perf_counter()
        incremental = sync_now(factory, token_name=SERVER_NAME, settings=settings, open_dep_client=opener)
        incremental_ms = (time.perf_counter() - started) * 1000
        assert incremental.modified == 1, incremental
        print(f"incremental sync with one change: {incremental_ms:.0f} ms", flush=True)

        # The baseline: the same rows, inserted plainly into the same table in one transaction.
        with transaction(factory) as session:
            rows = [dict(row._mapping) for row in session.execute(select(Device.__table__))]
            session.execute(delete(Device))
        for row in rows:
            row.pop("id")
        started = time.perf_counter()
        with transaction(factory) as session:
            session.execute(insert(Device), rows)
        baseline = time.perf_counter() - started
        print(f"plain bulk insert of the same {len(rows):,} rows: {baseline:.2f} s", flush=True)
        return {
            "database": world.engine.dialect.name,
            "devices": result.added,
            "seconds": round(seconds, 3),
            "devices_per_second": round(result.added / seconds),
            "peak_rss_mb": round(peak, 1),
            "rss_before_sync_mb": round(rss_before, 1),
            "insert_baseline_seconds": round(baseline, 3),
            "ratio_to_insert": round(seconds / baseline, 2),
            "incremental_one_change_ms": round(incremental_ms, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100_000, help="devices to sync (default 100,000)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL; default a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pippin-bench-") as scratch:
        figures = run(args.devices, args.database_url, Path(scratch))
    ratio = figures["ratio_to_insert"]
    print(f"sync / plain insert = {ratio} (target at most 3)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
