"""Every console page's server time with 100,000 devices, on SQLite or PostgreSQL: the target is 200 ms each.

Builds a database the size of a large fleet with bulk inserts (devices spread over three DEP tokens and four
enrollment profiles, with models, asset tags, Apple's side, enrollments in every state, assignment problems;
sync runs; audit events), signs an admin in, and times each page through an in-process client (the whole
request: routing, queries, template), several requests per page after one warm-up. The device table is timed
in every sort order, both directions, first and second page. Prints a line per page (median and max in ms)
and, last, one JSON object. Exits 1 when a page's median passes the target.

    .venv/bin/python bench/console.py [--devices 100000] [--requests 5] [--postgres [URL]]

``--postgres`` runs in a private schema (dropped afterwards) of the server at URL, by default
``$PIPPIN_TEST_POSTGRES_URL`` or postgresql+psycopg://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from world import BENCH_ACTOR, private_schema

from pippin.admin import audit
from pippin.admin import users as user_service
from pippin.config import Settings
from pippin.dep import profiles as profile_service
from pippin.dep.profile_schemas import ProfileCreate
from pippin.inventory.schemas import DeviceSort, SortDirection
from pippin.server.app import create_server
from pippin.store.db import transaction
from pippin.store.models import AuditEvent, DEPToken, Device, Enrollment, SyncRun, TokenDefaultProfile, utcnow

TARGET_MS = 200.0
EMAIL, PASSWORD = "bench@example.com", "a benchmark passphrase"
TOKENS = ("stockholm", "berlin", "austin")
PROFILES = ("Staff phones", "Kiosk iPads", "Loaners", "Executives")
MODELS = (
    "iPhone 15 Pro",
    "iPhone 13",
    "iPhone SE (3rd generation)",
    "iPad Air (5th generation)",
    "iPad (10th generation)",
)
# The enrollment side of each device, drawn per device: none (not contacted), enrolled with the revision it has
# now or an older one (pending reset), checked out, failed. About one in twelve is removed at Apple.
ENROLLMENTS = (None,) * 6 + ("enrolled",) * 3 + ("enrolled_old", "unenrolled", "failed")
ASSIGNMENT = ("assigned",) * 8 + ("pending", "failed", "throttled", None)
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SERIAL_ALPHABET = "0123456789CDFGHJKLMNPQRTVWXY"
SYNC_RUNS_PER_TOKEN = 500
AUDIT_EVENTS = 5_000


def _seed(settings: Settings, app: Any, devices: int) -> list[str]:
    """Fill the database with bulk inserts; returns the serial numbers."""
    rng = random.Random(7)
    now = utcnow()
    factory = app.state.resources.session_factory
    with transaction(factory) as session:
        user_service.create_user(session, email=EMAIL, password=PASSWORD, actor=BENCH_ACTOR)
        token_ids = []
        for index, name in enumerate(TOKENS):
            token = DEPToken(
                name=name,
                status="ok",
                server_name=f"{name.title()} MDM",
                server_uuid=f"{index:032X}",
                org_name="Bench Org",
                apple_id="it@example.com",
                expires_at=now + timedelta(days=20 + 150 * index),
                uploaded_at=now - timedelta(days=100),
                credentials_encrypted=b"bench",
                last_full_sync_at=now - timedelta(days=2),
                next_sync_at=now + timedelta(minutes=30),
            )
            session.add(token)
            session.flush()
            token_ids.append(token.id)
        profile_ids = []
        for name in PROFILES:
            created = profile_service.create_profile(
                session,
                data=ProfileCreate(name=name, supervised=True, skip_setup_items=["Siri"]),
                settings=settings,
                actor=BENCH_ACTOR,
            )
            profile_ids.append(profile_service.get_profile(session, name=created.name).id)
        for token_id, profile_id in zip(token_ids, profile_ids, strict=False):
            session.add(TokenDefaultProfile(token_id=token_id, profile_id=profile_id, set_at=now))
    serials = sorted({"".join(rng.choices(SERIAL_ALPHABET, k=12)) for _ in range(devices)})
    rows = []
    enrollments: dict[str, tuple[str, int | None]] = {}
    for number, serial in enumerate(serials):
        status = rng.choice(ASSIGNMENT)
        enrollment = rng.choice(ENROLLMENTS)
        if enrollment is not None:
            enrollments[serial] = (enrollment, None if status is None else profile_ids[number % len(profile_ids)])
        rows.append(
            {
                "serial_number": serial,
                "token_id": token_ids[number % len(token_ids)],
                "model": rng.choice(MODELS),
                "description": "BENCH DEVICE",
                "asset_tag": f"AT-{rng.randrange(10**6):06d}" if number % 3 else None,
                "os": "iOS",
                "device_family": "iPhone",
                "profile_status": "assigned" if status == "assigned" else "empty",
                "apple_status": "removed" if rng.randrange(12) == 0 else "assigned",
                "first_seen_at": now,
                "last_synced_at": now - timedelta(minutes=rng.randrange(10_000)),
                "fetch_generation": 1,
                "apple_record": {"serial_number": serial, "model": "bench"},
                "assigned_profile_id": None if status is None else profile_ids[number % len(profile_ids)],
                "assigned_revision": None if status is None else 1,
                "assignment_status": status,
                "assignment_error": "Apple answered FAILED" if status == "failed" else None,
                "assignment_retry_at": now + timedelta(hours=1) if status in ("failed", "throttled") else None,
            }
        )
    with transaction(factory) as session:
        for start in range(0, len(rows), 10_000):
            session.execute(insert(Device), rows[start : start + 10_000])
        ids = dict(session.execute(select(Device.serial_number, Device.id)).all())
        enrollment_rows = [
            {
                "udid": f"UDID-{serial}",
                "serial_number": serial,
                "device_id": ids[serial],
                "status": "enrolled" if kind.startswith("enrolled") else kind,
                "profile_id": profile_id,
                "profile_revision": 0 if kind == "enrolled_old" else 1,
                "first_contact_at": now,
                "enrolled_at": now,
                "last_seen_at": now,
            }
            for serial, (kind, profile_id) in enrollments.items()
        ]
        for start in range(0, len(enrollment_rows), 10_000):
            session.execute(insert(Enrollment), enrollment_rows[start : start + 10_000])
        runs = [
            {
                "token_id": token_id,
                "kind": "incremental" if n % 10 else "full",
                "trigger": "scheduled",
                "started_at": now - timedelta(hours=n),
                "finished_at": now - timedelta(hours=n) + timedelta(seconds=20),
                "window_ends_at": now - timedelta(hours=n) + timedelta(minutes=10),
                "outcome": "succeeded" if n % 17 else "failed",
                "added": 3,
            }
            for token_id in token_ids
            for n in range(1, SYNC_RUNS_PER_TOKEN + 1)
        ]
        session.execute(insert(SyncRun), runs)
        events = [
            {
                "at": now - timedelta(minutes=n),
                "actor": EMAIL,
                "interface": audit.Interface.console,
                "action": "profile.assign",
                "target": serials[n % len(serials)],
                "source": "127.0.0.1",
                "detail": {"queued": 1},
            }
            for n in range(AUDIT_EVENTS)
        ]
        session.execute(insert(AuditEvent), events)
    return serials


def _next_link(client: TestClient, path: str) -> str:
    """The page's "Next page" link, or the page itself when it has none."""
    page = client.get(path).text
    marker = 'rel="next"'
    if marker not in page:
        return path
    link = page[: page.index(marker)].rsplit('href="', 1)[1].split('"', 1)[0]
    return link.replace("&amp;", "&")


def _pages(client: TestClient, serials: list[str]) -> dict[str, str]:
    serial = serials[len(serials) // 2]
    pages = {
        "overview": "/console/",
        "tokens": "/console/tokens",
        "token detail": "/console/tokens/stockholm",
        "add a token": "/console/tokens/new",
        "profiles": "/console/profiles",
        "profile detail": "/console/profiles/Staff%20phones",
        "profile form (new)": "/console/profiles/new",
        "profile form (edit)": "/console/profiles/Staff%20phones/edit",
        "devices": "/console/devices",
    }
    for sort in DeviceSort:
        for direction in SortDirection:
            path = f"/console/devices?sort={sort.value}&direction={direction.value}"
            pages[f"devices by {sort.value} {direction.value}"] = path
            pages[f"devices by {sort.value} {direction.value}, 2nd"] = _next_link(client, path)
    pages.update(
        {
            "devices, state filter": "/console/devices?state=failed",
            "devices, pending reset": "/console/devices?state=pending_reset",
            "devices, token filter": "/console/devices?token=berlin",
            "devices, profile filter": "/console/devices?profile=Loaners",
            "devices, assignment filter": "/console/devices?assignment=throttled",
            "devices, cannot enroll": "/console/devices?cannot_enroll=1",
            "devices, all filters": "/console/devices?state=enrolled&token=austin&profile=Loaners&assignment=assigned",
            "devices, search serial": f"/console/devices?q={serial[:6].lower()}",
            "devices, search model": "/console/devices?q=iPad%20Air",
            "devices, search no match": "/console/devices?q=nothing-matches",
            "device detail": f"/console/devices/{serial}",
            "audit log": "/console/audit",
        }
    )
    return pages


@contextmanager
def _database(work: Path, postgres: str | None) -> Iterator[tuple[str, str]]:
    """The database URL to benchmark and its dialect; a PostgreSQL schema of its own, dropped at the end."""
    if postgres is None:
        yield f"sqlite:///{work / 'pippin.db'}", "sqlite"
        return
    url, schema, plain = private_schema(postgres)
    try:
        yield url, "postgresql"
    finally:
        import psycopg

        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run(devices: int, requests: int, work: Path, database_url: str, database: str) -> dict[str, Any]:
    settings = Settings(
        data_dir=work / "data",
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
        server_url="https://mdm.example.com",
    )
    app = create_server(settings)
    started = time.perf_counter()
    serials = _seed(settings, app, devices)
    seed_seconds = time.perf_counter() - started
    print(
        f"{database}: seeded {len(serials):,} devices, {len(TOKENS)} tokens, {len(PROFILES)} profiles "
        f"in {seed_seconds:.1f} s"
    )
    if database == "postgresql":
        with app.state.resources.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")  # as autovacuum would soon after a bulk load
    results: dict[str, dict[str, float]] = {}
    with TestClient(app, follow_redirects=False) as client:
        form = client.get("/console/sign-in").text
        csrf = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed_in = client.post("/console/sign-in", data={"email": EMAIL, "password": PASSWORD, "csrf_token": csrf})
        assert signed_in.status_code == 303, signed_in.text
        for name, path in _pages(client, serials).items():
            answer = client.get(path)  # warm-up: templates compiled, statements prepared
            assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
            times = []
            for _ in range(requests):
                begun = time.perf_counter()
                answer = client.get(path)
                times.append((time.perf_counter() - begun) * 1000)
                assert answer.status_code == 200, path
            results[name] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}
            median, slowest = results[name]["median_ms"], results[name]["max_ms"]
            flag = "" if median < TARGET_MS else "  << over the target"
            print(f"{name:<34} median {median:7.1f} ms   max {slowest:7.1f} ms{flag}")
    app.state.resources.engine.dispose()
    slowest = max(results, key=lambda page: results[page]["median_ms"])
    return {
        "benchmark": "console",
        "database": database,
        "devices": len(serials),
        "requests_per_page": requests,
        "target_ms": TARGET_MS,
        "slowest_page": slowest,
        "slowest_median_ms": results[slowest]["median_ms"],
        "all_under_target": all(result["median_ms"] < TARGET_MS for result in results.values()),
        "pages": results,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=5, help="timed requests per page (after one warm-up)")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=os.environ.get("PIPPIN_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        default=None,
        metavar="URL",
        help="run on PostgreSQL (a private schema) instead of SQLite",
    )
    arguments = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="pippin-bench-console-") as work,
        _database(Path(work), arguments.postgres) as (url, database),
    ):
        summary = run(arguments.devices, arguments.requests, Path(work), url, database)
    print(json.dumps(summary))
    return 0 if summary["all_under_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
