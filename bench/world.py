"""What the DEP benchmarks share: a database, the simulator in its own process, and a token connected to it.

`pippin sim apple` runs as a separate process, so its HTTP work does not share the benchmark's GIL. The token is
connected the way an admin connects one (key pair, MDM server, token download and upload), and every simulated
device is assigned to its MDM server. SQLite (a file in the work directory) by default; a PostgreSQL URL gets a
private schema, dropped at the end.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import Engine

from pippin.admin.audit import Actor, Interface
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep import token as token_service
from pippin.store.db import SessionFactory, create_db_engine, create_session_factory, transaction
from pippin.store.migrate import upgrade_to_head

#: Who the benchmarks act as when they call a use case directly.
BENCH_ACTOR = Actor(name="benchmark", interface=Interface.cli, source="bench")

ADMIN = "bench@example.com"


@dataclass
class World:
    """A migrated database, settings pointing at the simulator, and token ``token_name`` connected to it."""

    settings: Settings
    engine: Engine
    factory: SessionFactory
    box: SecretBox
    portal: httpx.Client
    server_uuid: str
    token_name: str
    assigned: int
    simulator: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_simulator(data_dir: Path, devices: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    pippin = Path(sys.executable).with_name("pippin")
    command = [str(pippin), "sim", "apple", "--port", str(port), "--data", str(data_dir), "--devices", str(devices)]
    # DEP benchmarks need no APNs: serving none keeps port 2197 out of their way.
    process = subprocess.Popen([*command, "--seed", "1", "--apns-port", "0"], stdout=subprocess.DEVNULL)
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


def start_pippin_serve(
    env: dict[str, str], work: Path, *, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`pippin serve` as its own process with ``env``, on ``port`` (a free one by default), once it answers
    ``/healthz``; its log in ``work/serve.log``. Returns the process and its base URL."""
    port = port or free_port()
    log = (work / "serve.log").open("wb")
    pippin = Path(sys.executable).with_name("pippin")
    process = subprocess.Popen([str(pippin), "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"pippin serve exited before it served; see {work / 'serve.log'}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return process, base_url
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("pippin serve did not start")


def pippin_env(world: World) -> dict[str, str]:
    """The environment of a `pippin` process on the benchmark's database, with the simulator as Apple."""
    assert world.settings.secret_key is not None
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPPIN_")}
    return env | {
        "PIPPIN_DATA_DIR": str(world.settings.data_dir),
        "PIPPIN_DATABASE_URL": world.settings.resolved_database_url,
        "PIPPIN_SECRET_KEY": world.settings.secret_key.get_secret_value(),
        "PIPPIN_DEP_BASE_URL": world.settings.dep_base_url,
        "PIPPIN_DEP_TIMEOUT": "120",
        "PIPPIN_LOG_LEVEL": "WARNING",
    }


def private_schema(url: str) -> tuple[str, str, str]:
    """(URL whose search_path is a new schema, schema name, plain URL to drop it with)."""
    import psycopg

    schema = f"pippin_bench_{secrets.token_hex(4)}"
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        # pg_trgm in public, as an admin's database has it: installed by the migration into this schema, it
        # would go with the schema when the benchmark drops it.
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}", schema, plain


def portal_serials(portal: httpx.Client, **filters: str) -> list[str]:
    """Every serial the portal lists under ``filters`` (``server_uuid=`` or ``unassigned="true"``), page by page."""
    serials: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {**filters, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        body = portal.get("/portal/devices", params=params).raise_for_status().json()
        serials += [device["serial_number"] for device in body["devices"]]
        cursor = body["next_cursor"]
        if not cursor:
            return serials


@contextmanager
def connected_world(devices: int, database_url: str | None, work: Path, *, token_name: str) -> Iterator[World]:
    """Set everything up, yield it, and tear it down (simulator stopped, private schema dropped)."""
    url = database_url or f"sqlite:///{work / 'pippin.db'}"
    schema = plain = None
    if url.startswith("postgresql"):
        url, schema, plain = private_schema(url)
    engine = create_db_engine(url)
    upgrade_to_head(engine)
    factory = create_session_factory(engine)
    started = time.perf_counter()
    simulator, base_url = start_simulator(work / "sim", devices)
    print(f"simulator with {devices:,} devices up in {time.perf_counter() - started:.1f} s ({base_url})", flush=True)
    try:
        settings = Settings(
            data_dir=work / "data",
            database_url=url,
            secret_key=Fernet.generate_key().decode(),
            dep_base_url=base_url,
            dep_timeout=120.0,
        )
        box = SecretBox.from_settings(settings)
        with httpx.Client(base_url=base_url, timeout=600) as portal:
            with transaction(factory) as session:
                pem = token_service.create_keypair(session, name=token_name, box=box, actor=BENCH_ACTOR)
            server = portal.post(
                "/portal/mdm-servers", json={"name": "Bench", "public_key_pem": pem, "admin_apple_id": ADMIN}
            )
            server_uuid = server.raise_for_status().json()["server_uuid"]
            p7m = portal.get(f"/portal/mdm-servers/{server_uuid}/token").raise_for_status().content
            token_service.upload_token(
                factory, name=token_name, p7m=p7m, apple_id=ADMIN, box=box, settings=settings, actor=BENCH_ACTOR
            )
            serials = portal_serials(portal, unassigned="true")
            body = {"server_uuid": server_uuid, "serials": serials}
            portal.post("/portal/assignments", json=body).raise_for_status()
            print(f"assigned {len(serials):,} devices to the MDM server", flush=True)
            yield World(settings, engine, factory, box, portal, server_uuid, token_name, len(serials), simulator)
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
        engine.dispose()
        if schema and plain:
            import psycopg

            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
