"""An API request's latency while sign-in attempts flood the console: the bound on password hashing at work.

Sets up a SQLite database (a temporary file) with an admin and an API token, starts `pippin serve` on it as its
own process (trusting 127.0.0.1 as a proxy, so flooders can claim addresses of their own with X-Forwarded-For),
and measures ``GET /api/v1/dep/tokens`` from one client: first alone, then while ``--flooders`` threads post
wrong passwords to ``/console/sign-in`` as fast as they are answered, each from its own address (a distributed
flood; ``--one-address`` sends them all from one). Prints the API's p50/p99 in both phases, what the sign-ins
were answered (400 checked, 429 paused by the throttle, 503 refused at once by the hashing bound), then one
JSON object. Without the bound, the same flood took the API's p50 from about 8 ms to about a second.

    .venv/bin/python bench/sign_in_flood.py [--flooders 10] [--seconds 10] [--one-address]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import BENCH_ACTOR, start_pippin_serve

from pippin.admin import api_tokens as api_token_service
from pippin.admin import users as user_service
from pippin.store.db import create_db_engine, create_session_factory, transaction
from pippin.store.migrate import upgrade_to_head

PASSWORD = "a benchmark passphrase"  # noqa: S105 (a throwaway account in a scratch database)
API_PATH = "/api/v1/dep/tokens"


def _prepare(database_url: str) -> str:
    engine = create_db_engine(database_url)
    upgrade_to_head(engine)
    with transaction(create_session_factory(engine)) as session:
        user_service.create_user(session, email="admin@example.com", password=PASSWORD, actor=BENCH_ACTOR)
        _, api_token = api_token_service.create_api_token(session, name="bench", actor=BENCH_ACTOR)
    engine.dispose()
    return api_token


def _serve(work: Path, database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPPIN_")} | {
        "PIPPIN_DATA_DIR": str(work / "data"),
        "PIPPIN_DATABASE_URL": database_url,
        "PIPPIN_SECRET_KEY": Fernet.generate_key().decode(),
        "PIPPIN_TRUSTED_PROXIES": "127.0.0.1",
        "PIPPIN_LOG_LEVEL": "WARNING",
    }
    return start_pippin_serve(env, work)


def _measure_api(base_url: str, token: str, seconds: float) -> list[float]:
    timings: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, timeout=60) as http:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            began = time.perf_counter()
            answer = http.get(API_PATH, headers=headers)
            timings.append(time.perf_counter() - began)
            if answer.status_code != 200:
                raise SystemExit(f"the API answered {answer.status_code} during the benchmark")
            time.sleep(0.02)
    return timings


def _flood(base_url: str, address: str, stop: threading.Event, answers: Counter[int], lock: threading.Lock) -> None:
    headers = {"X-Forwarded-For": address}
    with httpx.Client(base_url=base_url, timeout=60, follow_redirects=False, headers=headers) as http:
        form = http.get("/console/sign-in").text
        csrf = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        data = {"email": "admin@example.com", "password": "not the password", "csrf_token": csrf}
        while not stop.is_set():
            status = http.post("/console/sign-in", data=data).status_code
            with lock:
                answers[status] += 1


def _figures(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "requests": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
    }


def run(flooders: int, seconds: float, one_address: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pippin-bench-flood-") as folder:
        work = Path(folder)
        database_url = f"sqlite:///{work / 'pippin.db'}"
        token = _prepare(database_url)
        process, base_url = _serve(work, database_url)
        try:
            alone = _figures(_measure_api(base_url, token, min(seconds, 5.0)))
            print(f"API alone:        p50 {alone['p50_ms']} ms, p99 {alone['p99_ms']} ms", flush=True)
            stop, lock, answers = threading.Event(), threading.Lock(), Counter[int]()
            addresses = [f"203.0.113.{1 if one_address else n + 1}" for n in range(flooders)]
            threads = [threading.Thread(target=_flood, args=(base_url, a, stop, answers, lock)) for a in addresses]
            for thread in threads:
                thread.start()
            try:
                flooded = _figures(_measure_api(base_url, token, seconds))
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=60)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"API under flood:  p50 {flooded['p50_ms']} ms, p99 {flooded['p99_ms']} ms", flush=True)
    print(f"sign-in answers:  {dict(sorted(answers.items()))}", flush=True)
    return {
        "flooders": flooders,
        "seconds": seconds,
        "one_address": one_address,
        "api_alone": alone,
        "api_flooded": flooded,
        "sign_in_answers": {str(status): count for status, count in sorted(answers.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flooders", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--one-address", action="store_true", help="every flooder from one address")
    args = parser.parse_args()
    print(json.dumps(run(args.flooders, args.seconds, args.one_address)))


if __name__ == "__main__":
    main()
