"""A real `pippin serve` killed with SIGKILL while Apple works on an assignment batch: nothing is assigned twice.

Apple (the simulator) is slow to answer the second batch; the process is killed while that request is at Apple,
which finishes it anyway, as Apple would. Pippin never stores that answer. The next runner, once the batch's
lease is over, looks the batch's devices up at Apple (``POST /devices``), finds the profile assigned and sends
none of them again; the batch after it, never sent, goes out as usual.

The lease's end is brought forward in the database, which is what the passing of that time would look like to
the next process (as in ``test_sync_killed.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep import assignment, profiles
from pippin.dep.profile_schemas import ProfileCreate
from pippin.dep.sync_and_assign import sync_and_assign_now
from pippin.dep.token import dep_client_factory
from pippin.store.db import create_db_engine, create_session_factory, transaction
from pippin.store.models import DEPToken, Device, utcnow
from tests.actors import TEST_ACTOR
from tests.e2e.apple import add_devices, connect_token, truth
from tests.servers import free_port
from tests.simulator import RunningSimulator

DEVICES = 2500  # batches of Apple's 1000: stored, in flight when killed, never sent
PIPPIN = Path(sys.executable).with_name("pippin")


def _requests(sim: RunningSimulator) -> dict[str, int]:
    faults = sim.portal.get("/portal/faults")
    assert faults.status_code == 200, faults.text
    counts: dict[str, int] = faults.json()["progress"].get("requests", {})
    return counts


def _wait(condition: Any, what: str, *, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process is None or process.poll() is None, f"pippin serve ended before {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_serve_killed_while_apple_assigns_a_batch_sends_none_of_it_again(
    tmp_path: Path, sim: RunningSimulator, database_url: str
) -> None:
    key = Fernet.generate_key().decode()
    settings = Settings(data_dir=tmp_path, database_url=database_url, secret_key=key)
    settings = settings.model_copy(update={"dep_base_url": sim.base_url})
    engine = create_db_engine(settings.resolved_database_url)
    factory = create_session_factory(engine)
    box = SecretBox.from_settings(settings)
    server_uuid = connect_token(factory, settings, sim)
    add_devices(sim, server_uuid, DEVICES)
    synced = sync_and_assign_now(
        factory,
        token_name="acme",
        settings=settings,
        box=box,
        open_client=dep_client_factory(box=box, settings=settings),
    )
    assert synced.outcome == "succeeded"
    with transaction(factory) as session:
        profiles.create_profile(session, data=ProfileCreate(name="Staff"), settings=settings, actor=TEST_ACTOR)
        assert assignment.queue_assignment(session, profile_name="Staff", token_name="acme", actor=TEST_ACTOR).queued
        # Only the assignment job has work: the token's next sync is a day away.
        session.execute(update(DEPToken).values(next_sync_at=utcnow() + timedelta(days=1)))
    # Apple answers the first batch at once and works 15 seconds on the second.
    slow_second = {
        "latency_seconds": 15,
        "post_profile_devices_responses": [{"count": 1, "response": "success"}, {"count": 1, "response": "latency"}],
    }
    assert sim.portal.put("/portal/faults", json=slow_second).status_code == 200

    env = {name: value for name, value in os.environ.items() if not name.startswith("PIPPIN_")}
    env |= {
        "PIPPIN_DATA_DIR": str(tmp_path),
        "PIPPIN_DATABASE_URL": settings.resolved_database_url,
        "PIPPIN_SECRET_KEY": key,
        "PIPPIN_DEP_BASE_URL": sim.base_url,
    }
    serve = subprocess.Popen(
        [str(PIPPIN), "serve", "--port", str(free_port())],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: _requests(sim).get("post_profile_devices", 0) >= 2, "the second batch", process=serve)
    finally:
        serve.send_signal(signal.SIGKILL)
        serve.wait(timeout=10)

    # Apple finishes the request of the dead process: the first 2000 devices hold the profile.
    def apple_holds() -> int:
        return sum(1 for device in truth(sim, server_uuid).values() if device.get("profile_status") == "assigned")

    _wait(lambda: apple_holds() == 2000, "Apple to finish the second batch")
    with transaction(factory) as session:
        rows = session.execute(select(Device.assignment_status, Device.assignment_claim)).all()
    assert sum(1 for status, _ in rows if status == "assigned") == 1000, "the first batch's answer is stored"
    assert sum(1 for status, claim in rows if status == "pending" and claim) == 1000, "the second is unsettled"

    with transaction(factory) as session:  # the lease has run out
        session.execute(
            update(Device)
            .where(Device.assignment_claim.is_not(None))
            .values(assignment_retry_at=utcnow() - timedelta(seconds=1))
        )
    before = _requests(sim)
    command = [str(PIPPIN), "profiles", "retry-due"]
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert resumed.returncode == 0, resumed.stderr
    after = _requests(sim)
    assert after.get("post_devices", 0) - before.get("post_devices", 0) == 1, "one look-up for the batch"
    assert after["post_profile_devices"] - before["post_profile_devices"] == 1, "only the never-sent batch"
    assert "sent 500 devices" in resumed.stdout and "1000 found assigned at Apple" in resumed.stdout

    with transaction(factory) as session:
        rows = session.execute(select(Device.assignment_status, Device.assignment_claim)).all()
    assert {status for status, _ in rows} == {"assigned"} and {claim for _, claim in rows} == {None}
    assert apple_holds() == DEVICES
    engine.dispose()
