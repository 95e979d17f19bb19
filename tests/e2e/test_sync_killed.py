"""A real `pippin dep sync` process killed with SIGKILL mid-sync: the next run resumes and loses nothing.

The other fault tests inject a crash inside one process; this one kills the operating-system process between
pages, the way a power cut or an OOM kill would, and checks what the database kept: every committed page with
the cursor that covers it, and a window that reopens when it ends.

The window is long (no step of the test races it on a slow machine); its end is then brought forward in the
database, which is what the passing of that time would look like to the next process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select, update

from pippin.config import Settings
from pippin.store.db import create_db_engine, create_session_factory, transaction
from pippin.store.migrate import upgrade_to_head
from pippin.store.models import DEPToken, Device, SyncRun, utcnow
from tests.e2e.apple import add_devices, connect_token, truth
from tests.simulator import RunningSimulator

DEVICES = 2500
WINDOW_SECONDS = 600


def _pippin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("pippin")), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_sync_killed_between_pages_resumes_with_nothing_lost_or_duplicated(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    database = tmp_path / "pippin.db"
    key = Fernet.generate_key().decode()
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{database}", secret_key=key)
    settings = settings.model_copy(update={"dep_base_url": sim.base_url})
    engine = create_db_engine(settings.resolved_database_url)
    upgrade_to_head(engine)
    factory = create_session_factory(engine)
    server_uuid = connect_token(factory, settings, sim)
    add_devices(sim, server_uuid, DEVICES)
    with transaction(factory) as session:  # small pages, so the run has many boundaries to be killed at
        session.execute(DEPToken.__table__.update().values(fetch_limit=250, sync_limit=250))
    # Every fetch page takes a while at Apple, so the process is surely mid-sync when it is killed.
    slow = {"rates": {"post_server_devices": {"latency": 1.0}}, "latency_seconds": 0.3}
    assert sim.portal.put("/portal/faults", json=slow).status_code == 200

    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPPIN_")}
    env |= {
        "PIPPIN_DATA_DIR": str(tmp_path),
        "PIPPIN_DATABASE_URL": settings.resolved_database_url,
        "PIPPIN_SECRET_KEY": key,
        "PIPPIN_DEP_BASE_URL": sim.base_url,
        "PIPPIN_DEP_SYNC_WINDOW": str(WINDOW_SECONDS),  # plain seconds, as the README allows
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("pippin")), "dep", "sync", "acme"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    committed = 0
    while committed < 3:
        assert process.poll() is None, "the sync ended before it could be killed"
        assert time.monotonic() < deadline, "the sync made no progress"
        with transaction(factory) as session:
            committed = session.scalar(select(SyncRun.pages)) or 0
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    with transaction(factory) as session:
        pages = session.scalar(select(SyncRun.pages)) or 0
        kept = session.scalar(select(func.count()).select_from(Device)) or 0
        token = session.scalars(select(DEPToken)).one()
        assert kept == pages * 250, "each committed page is all there, and nothing of an uncommitted one"
        assert token.cursor is not None and token.cursor_kind == "fetch"
    assert 0 < kept < DEVICES

    # The dead run's window holds until it ends, then the next sync resumes from the stored cursor.
    refused = _pippin(env, "dep", "sync", "acme")
    assert refused.returncode == 4, refused.stderr
    assert "already running" in refused.stderr and "Try again after" in refused.stderr
    with transaction(factory) as session:  # the window's ten minutes have passed
        over = utcnow() - timedelta(seconds=1)
        session.execute(update(DEPToken).values(sync_window_until=over))
        session.execute(update(SyncRun).values(window_ends_at=over))
    assert sim.portal.put("/portal/faults", json={}).status_code == 200
    resumed = _pippin(env, "dep", "sync", "acme")
    assert resumed.returncode == 0, resumed.stderr

    with transaction(factory) as session:
        serials = session.scalars(select(Device.serial_number)).all()
        runs = session.execute(select(SyncRun.outcome, SyncRun.error_code).order_by(SyncRun.id)).all()
    assert len(serials) == len(set(serials)) == DEVICES
    assert set(serials) == set(truth(sim, server_uuid))
    assert runs[0] == ("failed", "abandoned") and runs[-1][0] == "succeeded"
    engine.dispose()
