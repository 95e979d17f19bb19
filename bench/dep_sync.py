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
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import delete, insert, select

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep import token as token_service
from pippin.dep.sync import dep_client_factory, sync_now
from pippin.store.db import create_db_engine, create_session_factory, transaction
from pippin.store.migrate import upgrade_to_head
from pippin.store.models import Device

ADMIN = "bench@example.com"
SERVER_NAME = "bench-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mb() -> float:
    """Resident memory now, from /proc (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1024 / 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def start_simulator(data_dir: Path, devices: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    pippin = Path(sys.executable).with_name("pippin")
    command = [str(pippin), "sim", "apple", "--port", str(port), "--data", str(data_dir), "--devices", str(devices)]
    process = subprocess.Popen([*command, "--seed", "1"], stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the simulator exited before it served")
        try:
            if httpx.get(f"{base_url}/portal/terms", timeout=1).status_code == 200:
                return process, base_url
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("the simulator did not start")


def private_schema(url: str) -> tuple[str, str, str]:
    """(URL whose search_path is a new schema, schema name, plain URL to drop it with)."""
    import psycopg

    schema = f"pippin_bench_{secrets.token_hex(4)}"
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}", schema, plain


def assign_everything(portal: httpx.Client, server_uuid: str) -> int:
    serials: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"unassigned": "true", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        body = portal.get("/portal/devices", params=params).raise_for_status().json()
        serials += [device["serial_number"] for device in body["devices"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    portal.post("/portal/assignments", json={"server_uuid": server_uuid, "serials": serials}).raise_for_status()
    return len(serials)


def run(devices: int, database_url: str | None, work: Path) -> dict[str, Any]:
    url = database_url or f"sqlite:///{work / 'pippin.db'}"
    schema = plain = None
    if url.startswith("postgresql"):
        url, schema, plain = private_schema(url)
    settings = Settings(data_dir=work / "data", database_url=url, secret_key=Fernet.generate_key().decode())
    engine = create_db_engine(url)
    upgrade_to_head(engine)
    factory = create_session_factory(engine)
    started = time.perf_counter()
    simulator, base_url = start_simulator(work / "sim", devices)
    print(f"simulator with {devices:,} devices up in {time.perf_counter() - started:.1f} s ({base_url})", flush=True)
    try:
        settings = settings.model_copy(update={"dep_base_url": base_url, "dep_timeout": 120.0})
        box = SecretBox.from_settings(settings)
        with httpx.Client(base_url=base_url, timeout=600) as portal:
            with transaction(factory) as session:
                pem = token_service.create_keypair(session, name=SERVER_NAME, box=box)
            server = portal.post(
                "/portal/mdm-servers", json={"name": "Bench", "public_key_pem": pem, "admin_apple_id": ADMIN}
            )
            server_uuid = server.raise_for_status().json()["server_uuid"]
            p7m = portal.get(f"/portal/mdm-servers/{server_uuid}/token").raise_for_status().content
            with transaction(factory) as session:
                token_service.upload_token(
                    session, name=SERVER_NAME, p7m=p7m, apple_id=ADMIN, box=box, settings=settings
                )
            assigned = assign_everything(portal, server_uuid)
            print(f"assigned {assigned:,} devices to the MDM server", flush=True)

            opener = dep_client_factory(box=box, settings=settings)
            rss_before = rss_mb()
            started = time.perf_counter()
            result = sync_now(factory, token_name=SERVER_NAME, settings=settings, open_dep_client=opener)
            seconds = time.perf_counter() - started
            assert result.outcome == "succeeded" and result.added == assigned, result
            peak = peak_rss_mb()
            print(
                f"full sync: {result.added:,} devices in {seconds:.2f} s = {result.added / seconds:,.0f} devices/s, "
                f"{result.pages} pages; peak RSS {peak:.0f} MB (was {rss_before:.0f} MB before the sync)",
                flush=True,
            )

            # One change at Apple, then an incremental sync: its cost must not depend on the fleet's size.
            first = portal.get("/portal/devices", params={"server_uuid": server_uuid, "limit": 1}).json()
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
            "database": engine.dialect.name,
            "devices": result.added,
            "seconds": round(seconds, 3),
            "devices_per_second": round(result.added / seconds),
            "peak_rss_mb": round(peak, 1),
            "rss_before_sync_mb": round(rss_before, 1),
            "insert_baseline_seconds": round(baseline, 3),
            "ratio_to_insert": round(seconds / baseline, 2),
            "incremental_one_change_ms": round(incremental_ms, 1),
        }
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
        engine.dispose()
        if schema and plain:
            import psycopg

            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


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
