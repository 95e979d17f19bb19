"""The API's device list and the console's devices page under 20 concurrent clients during a full DEP sync.

Sets up a database, `pippin sim apple` with the devices assigned to a connected token (``world.py``), an admin
with an API token and console accounts, then starts `pippin serve` as its own process on that database and
starts a full sync of every device through the API ("Sync now", run inside the server as an admin's would be).
While it runs, 20 clients (threads, each with its own connection and sign-in; half start on the API, half on the
console, each alternating) request ``GET /api/v1/devices`` and ``GET /console/devices`` for 30 s. Prints
p50/p99/max per page and together, the errors (any answer but 200, or no answer), and how far the sync got,
then one JSON object. The target on SQLite: p99 at most 1 s and no errors.

    .venv/bin/python bench/concurrency.py [--devices 100000] [--clients 20] [--seconds 30] [--database-url ...]
    .venv/bin/python bench/concurrency.py --without-sync   # the same load alone, as a baseline
    .venv/bin/python bench/concurrency.py --sync-from cli  # the sync as its own `pippin dep sync` process
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import BENCH_ACTOR, World, connected_world, pippin_env, start_pippin_serve

from pippin.admin import api_tokens as api_token_service
from pippin.admin import users as user_service
from pippin.store.db import transaction
from pippin.store.models import DEPToken, utcnow

SERVER_NAME = "bench-concurrency"
PASSWORD = "a benchmark passphrase"  # noqa: S105 (a throwaway account in a scratch database)
TARGET_P99_SECONDS = 1.0
PAGES = {"api": "/api/v1/devices", "console": "/console/devices"}
PIPPIN = Path(sys.executable).with_name("pippin")


@dataclass
class Client:
    """One simulated admin: its own HTTP connection, its timings and its errors."""

    number: int
    timings: dict[str, list[float]] = field(default_factory=lambda: {page: [] for page in PAGES})
    errors: list[str] = field(default_factory=list)


def _prepare(world: World, clients: int) -> str:
    """Admins for the console clients and an API token; the token's own schedule pushed away (returns the token)."""
    with transaction(world.factory) as session:
        for number in range(clients):
            user_service.create_user(session, email=f"admin{number}@example.com", password=PASSWORD, actor=BENCH_ACTOR)
        _, api_token = api_token_service.create_api_token(session, name="bench", scope="read-write", actor=BENCH_ACTOR)
        token = session.query(DEPToken).filter_by(name=SERVER_NAME).one()
        # Only the sync this benchmark starts runs: the server's scheduler must not start one of its own first.
        token.next_sync_at = utcnow().replace(year=utcnow().year + 1)
    return api_token


def _serve(world: World, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    return start_pippin_serve(pippin_env(world), work)


def _sign_in(http: httpx.Client, email: str) -> None:
    """Sign in as a browser would; all clients share one address, so some wait their turn (503, Retry-After)."""
    for _ in range(60):
        form = http.get("/console/sign-in").raise_for_status().text
        csrf = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        answer = http.post("/console/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": csrf})
        if answer.status_code != 503:
            break
        time.sleep(float(answer.headers.get("retry-after", "1")))
    if answer.status_code != 303:
        raise SystemExit(f"console sign-in failed: {answer.status_code}")


def _run_client(client: Client, base_url: str, api_token: str, start: threading.Event, until: list[float]) -> None:
    headers = {"Authorization": f"Bearer {api_token}"}
    with httpx.Client(base_url=base_url, timeout=60, follow_redirects=False) as http:
        _sign_in(http, f"admin{client.number}@example.com")
        order = list(PAGES) if client.number % 2 == 0 else list(reversed(PAGES))
        start.wait()
        turn = 0
        while time.monotonic() < until[0]:
            page = order[turn % 2]
            turn += 1
            began = time.perf_counter()
            try:
                answer = http.get(PAGES[page], headers=headers if page == "api" else None)
                if answer.status_code != 200:
                    client.errors.append(f"{page}: HTTP {answer.status_code}")
            except httpx.HTTPError as error:
                client.errors.append(f"{page}: {type(error).__name__}")
            client.timings[page].append(time.perf_counter() - began)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _figures(values: list[float]) -> dict[str, Any]:
    return {
        "requests": len(values),
        "p50_s": round(statistics.median(values), 3),
        "p99_s": round(_percentile(values, 0.99), 3),
        "max_s": round(max(values), 3),
    }


def _latest_run(http: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    runs = http.get(f"/api/v1/dep/tokens/{SERVER_NAME}/syncs", params={"limit": 1}, headers=headers)
    latest: dict[str, Any] = runs.raise_for_status().json()[0]
    return latest


def run(
    devices: int,
    clients: int,
    seconds: float,
    database_url: str | None,
    work: Path,
    *,
    with_sync: bool = True,
    sync_from: str = "server",
) -> dict[str, Any]:
    with connected_world(devices, database_url, work, token_name=SERVER_NAME) as world:
        api_token = _prepare(world, clients)
        server, base_url = _serve(world, work)
        headers = {"Authorization": f"Bearer {api_token}"}
        try:
            start, until = threading.Event(), [0.0]
            load = [Client(number) for number in range(clients)]
            threads = [
                threading.Thread(target=_run_client, args=(client, base_url, api_token, start, until))
                for client in load
            ]
            for thread in threads:
                thread.start()
            with httpx.Client(base_url=base_url, timeout=60) as http:
                sync_process = None
                if with_sync and sync_from == "cli":
                    command = [str(PIPPIN), "dep", "sync", SERVER_NAME, "--full"]
                    sync_process = subprocess.Popen(command, env=pippin_env(world), stdout=subprocess.DEVNULL)
                elif with_sync:
                    started = http.post(
                        f"/api/v1/dep/tokens/{SERVER_NAME}/sync", params={"full": "true"}, headers=headers
                    )
                    if started.status_code != 202:
                        raise SystemExit(f"the sync did not start: {started.status_code} {started.text}")
                sync_began = time.monotonic()
                until[0] = sync_began + seconds
                start.set()
                for thread in threads:
                    thread.join()
                during: dict[str, Any] = {"outcome": "not started", "duration_seconds": 0.0}
                if sync_process is not None:
                    sync_process.wait()
                if with_sync:
                    during = _latest_run(http, headers)
                    while during["outcome"] == "running":  # let it finish, to report how long it took
                        time.sleep(1)
                        during = _latest_run(http, headers)
                sync_seconds = float(during["duration_seconds"] or 0.0)
        finally:
            server.terminate()
            server.wait(timeout=60)
        timings = {page: [t for client in load for t in client.timings[page]] for page in PAGES}
        errors = [error for client in load for error in client.errors]
        figures: dict[str, Any] = {
            "database": world.engine.dialect.name,
            "devices": devices,
            "clients": clients,
            "sync_from": sync_from if with_sync else None,
            "seconds": seconds,
            "sync_outcome": during["outcome"],
            "sync_added": during.get("added"),
            "sync_seconds": round(sync_seconds, 1),
            "sync_covered_the_load": with_sync and sync_seconds >= seconds,
            "errors": len(errors),
            "error_kinds": sorted(set(errors))[:10],
            "all": _figures(timings["api"] + timings["console"]),
        }
        for page, values in timings.items():
            figures[page] = _figures(values)
            print(
                f"{page:8} {PAGES[page]:18} {figures[page]['requests']:6,} requests  p50 {figures[page]['p50_s']:.3f} s"
                f"  p99 {figures[page]['p99_s']:.3f} s  max {figures[page]['max_s']:.3f} s",
                flush=True,
            )
        overall = figures["all"]
        print(
            f"all      {overall['requests']:,} requests  p50 {overall['p50_s']:.3f} s  p99 {overall['p99_s']:.3f} s  "
            f"max {overall['max_s']:.3f} s; {len(errors)} errors {figures['error_kinds']}",
            flush=True,
        )
        print(
            f"full sync: {during['outcome']}, {during.get('added') or 0:,} devices added in {sync_seconds:.1f} s "
            f"({'covering' if sync_seconds >= seconds else 'NOT covering'} the {seconds:.0f} s of load)",
            flush=True,
        )
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100_000, help="devices to sync (default 100,000)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the clients run (default 30)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL; default a temporary SQLite file")
    parser.add_argument("--without-sync", action="store_true", help="the same load with no sync (a baseline)")
    parser.add_argument(
        "--sync-from",
        choices=("server", "cli"),
        default="server",
        help="run the sync inside pippin serve (its Sync now, the default) or as its own `pippin dep sync` process",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pippin-bench-") as scratch:
        figures = run(
            args.devices,
            args.clients,
            args.seconds,
            args.database_url,
            Path(scratch),
            with_sync=not args.without_sync,
            sync_from=args.sync_from,
        )
    met = figures["all"]["p99_s"] <= TARGET_P99_SECONDS and figures["errors"] == 0
    print(
        f"p99 {figures['all']['p99_s']:.3f} s, {figures['errors']} errors (target p99 <= 1 s, 0 errors): "
        f"{'met' if met else 'NOT met'}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
