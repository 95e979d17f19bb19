"""Assigning one enrollment profile to many devices at the simulated Apple: devices per second and Apple calls.

Starts `pippin sim apple` as its own process with the devices seeded, connects a DEP token the way an admin does,
assigns every device to the MDM server in the portal, and puts the same serials in Pippin's inventory with one
bulk insert (the sync is measured by ``dep_sync.py``). Then it times:

1. queueing the profile for every device without one (``queue_assignment(all_unassigned=True)``);
2. sending them (``run_due_assignments``): one definition, then batches of 1000, each claimed, sent and
   committed with its outcome; Apple's calls are counted on the wire (about devices / 1000 + 2);
3. a second pass, which must send nothing (no device is assigned twice for the same revision).

Apple's truth is checked at the end: the portal lists every device under the profile. SQLite (a temporary file)
by default; ``--database-url postgresql+psycopg://...`` uses a private schema dropped at the end. Prints a line
per stage and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import BENCH_ACTOR, connected_world, portal_serials

from pippin.dep import assignment, assignment_runner, profiles
from pippin.dep.profile_schemas import ProfileCreate
from pippin.dep.token import dep_client_factory
from pippin.store.db import transaction
from pippin.store.models import DEPToken, ProfileDefinition, utcnow

SERVER_NAME = "bench-assign"


class CountingTransport(httpx.BaseTransport):
    """Real HTTP, counting requests per method and path: the number of calls Apple would see."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.calls: Counter[str] = Counter()
        self.seconds = 0.0  # time spent waiting for Apple (the simulator), to tell it from Pippin's own work

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls[f"{request.method} {request.url.path}"] += 1
        started = time.perf_counter()
        response = self.inner.handle_request(request)
        response.read()
        self.seconds += time.perf_counter() - started
        return response

    def close(self) -> None:
        self.inner.close()


def run(devices: int, database_url: str | None, work: Path) -> dict[str, Any]:
    with connected_world(devices, database_url, work, token_name=SERVER_NAME) as world:
        factory, settings, box, portal, engine = world.factory, world.settings, world.box, world.portal, world.engine
        serials = portal_serials(portal, server_uuid=world.server_uuid)
        now = utcnow()
        with transaction(factory) as session:
            token_id = session.scalars(select(DEPToken.id).where(DEPToken.name == SERVER_NAME)).one()
            rows = [
                {"serial_number": serial, "token_id": token_id, "profile_status": "empty", "apple_record": {},
                 "first_seen_at": now, "last_synced_at": now}
                for serial in serials
            ]  # fmt: skip
            session.execute(insert(DEPToken.metadata.tables["devices"]), rows)
            profiles.create_profile(
                session,
                data=ProfileCreate(name="Bench", supervised=True, skip_setup_items=["Siri"]),
                settings=settings,
                actor=BENCH_ACTOR,
            )
        print(f"{len(serials):,} devices at Apple and in Pippin's inventory", flush=True)

        started = time.perf_counter()
        with transaction(factory) as session:
            queued = assignment.queue_assignment(session, profile_name="Bench", all_unassigned=True, actor=BENCH_ACTOR)
        queue_seconds = time.perf_counter() - started
        print(f"queued {queued.queued:,} devices in {queue_seconds:.2f} s", flush=True)

        transport = CountingTransport()
        opener = dep_client_factory(box=box, settings=settings, transport=transport)
        started = time.perf_counter()
        report = assignment_runner.run_due_assignments(factory, settings=settings, box=box, open_client=opener)
        seconds = time.perf_counter() - started
        assert report.assigned == len(serials) and report.still_due == 0, report
        calls = sum(transport.calls.values())
        rate = report.assigned / seconds
        print(
            f"assigned {report.assigned:,} devices in {seconds:.2f} s = {rate:,.0f} devices/s; "
            f"{calls} Apple calls ({dict(transport.calls)}), {report.batches} batches; "
            f"{transport.seconds:.2f} s of it waiting for Apple",
            flush=True,
        )

        started = time.perf_counter()
        again = assignment_runner.run_due_assignments(factory, settings=settings, box=box, open_client=opener)
        second_ms = (time.perf_counter() - started) * 1000
        assert again.sent == 0, again
        print(f"second pass: nothing sent, {second_ms:.0f} ms", flush=True)

        with transaction(factory) as session:
            profile_uuid = session.scalars(select(ProfileDefinition.profile_uuid)).one()
        truth = portal.get(f"/portal/profiles/{profile_uuid}").raise_for_status().json()
        assert sorted(truth["devices"]) == sorted(serials), "Apple's truth differs from Pippin's"
        print(f"Apple lists all {len(truth['devices']):,} devices under profile {profile_uuid}", flush=True)
    return {
        "database": engine.dialect.name,
        "devices": report.assigned,
        "seconds": round(seconds, 3),
        "devices_per_second": round(report.assigned / seconds),
        "apple_calls": calls,
        "assign_calls": transport.calls.get("POST /profile/devices", 0),
        "waiting_for_apple_seconds": round(transport.seconds, 3),
        "batches": report.batches,
        "queue_seconds": round(queue_seconds, 3),
        "second_pass_ms": round(second_ms, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100_000, help="devices to assign (default 100,000)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL; default a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pippin-bench-") as scratch:
        figures = run(args.devices, args.database_url, Path(scratch))
    print(f"Apple calls: {figures['apple_calls']} for {figures['devices']:,} devices (about devices / 1000 + 2)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
