"""Randomised fault soak: Pippin's inventory ends equal to Apple's truth whatever goes wrong on the way.

Against the simulator over HTTP, with faults on (5xx, 429 with Retry-After, dropped connections, expired
sessions, the repeated-cursor quirk), interleaved with Business Manager changes (assign, unassign, edit) and
processes "killed" between applying a page and committing it (a BaseException the sync cannot catch, so its
run is left running and its window held, as after SIGKILL). After the faults stop, a few syncs must bring the
inventory to exactly the simulator's truth: no device lost, none duplicated, every state right.

A handful of seeds run by default; PIPPIN_SLOW_TESTS=1 runs many more (marker ``slow``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from pippin.config import Settings
from pippin.dep import sync as sync_module
from pippin.dep import token as token_service
from pippin.dep.client import DEPClient
from pippin.dep.oauth import OAuthCredentials
from pippin.dep.sync import DevicePager, sync_now
from pippin.dep.sync_runs import SyncWindowClosed
from pippin.sim.models import SimMDMServer, SimServerToken
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import DEPToken, Device, utcnow
from tests.crypto.openssl_tokens import pooled_key_generator
from tests.e2e.apple import assign, connect_token, truth, unassign
from tests.simulator import RunningSimulator

SLOW = os.environ.get("PIPPIN_SLOW_TESTS") == "1"
QUICK_SEEDS = [1, 2, 3]
SLOW_SEEDS = list(range(100, 140))


class Killed(BaseException):
    """The process died: nothing after this point of the sync runs, not even its bookkeeping."""


class Clock:
    """Pippin's clock, which the test moves past a dead sync's window instead of waiting for it."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


def fast_clients(sim: RunningSimulator) -> Callable[[DEPToken], DevicePager]:
    """DEP clients with the server's current token and no real sleeping between retries."""

    def open_for(token: DEPToken) -> DevicePager:
        with sim.state.transaction() as session:
            row = session.scalars(
                select(SimServerToken)
                .join(SimMDMServer, SimMDMServer.id == SimServerToken.server_id)
                .where(SimMDMServer.server_uuid == token.server_uuid, SimServerToken.revoked_at.is_(None))
                .order_by(SimServerToken.id.desc())
            ).first()
            assert row is not None
            credentials = OAuthCredentials(
                consumer_key=row.consumer_key,
                consumer_secret=row.consumer_secret,
                access_token=row.access_token,
                access_secret=row.access_secret,
            )
        return DEPClient(
            base_url=sim.base_url, credentials=credentials, max_retries=6, timeout=10, sleep=lambda s: None
        )

    return open_for


def faults(seed: int, rate: float) -> dict[str, Any]:
    response_faults = {
        "internal_server_error": rate,
        "service_unavailable": rate / 2,
        "too_many_requests": rate,
        "dropped_connection": rate / 2,
        "session_expired": rate / 2,
    }
    return {
        "seed": seed,
        "retry_after_seconds": 0,
        "rates": {
            "get_session": {"internal_server_error": rate / 2, "too_many_requests": rate / 2},
            "post_server_devices": response_faults,
            "post_devices_sync": {**response_faults, "repeated_cursor": 0.15},
        },
    }


def inventory(session_factory: SessionFactory) -> dict[str, Device]:
    with transaction(session_factory) as session:
        return {device.serial_number: device for device in session.scalars(select(Device))}


def soak(
    seed: int,
    *,
    session_factory: SessionFactory,
    settings: Settings,
    sim: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(seed)
    online = settings.model_copy(update={"dep_base_url": sim.base_url})
    server_uuid = connect_token(session_factory, online, sim)
    with transaction(session_factory) as session:
        token = session.scalars(select(DEPToken)).one()
        # Small pages, so a small fleet still takes many pages, cursors and chances to fail.
        token.fetch_limit = rng.choice([3, 5, 8])
        token.sync_limit = rng.choice([2, 4, 7])
    created = sim.portal.post("/portal/devices", json={"count": 40, "seed": seed})
    assert created.status_code == 201, created.text
    owned: list[str] = created.json()["serials"]
    assign(sim, server_uuid, rng.sample(owned, 25))
    assert sim.portal.put("/portal/faults", json=faults(seed, rate=rng.choice([0.1, 0.2]))).status_code == 200

    clock = Clock()
    opener = fast_clients(sim)
    real_apply = sync_module.apply_device_page
    ever_seen: set[str] = set()

    def sync(*, full: bool = False, kill_after: int | None = None) -> None:
        calls = 0

        def apply_maybe_die(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            counts = real_apply(*args, **kwargs)
            calls += 1
            if kill_after is not None and calls == kill_after:
                raise Killed  # after the page is applied, before its transaction commits
            return counts

        monkeypatch.setattr(sync_module, "apply_device_page", apply_maybe_die)
        try:
            sync_now(
                session_factory, token_name="acme", settings=online, open_dep_client=opener, full=full, clock=clock
            )
        except Killed:
            clock.offset += online.dep_sync_window  # the dead run's window must end before anyone syncs again
        except SyncWindowClosed:  # pragma: no cover - every run here ends or dies before the next starts
            raise
        finally:
            monkeypatch.setattr(sync_module, "apply_device_page", real_apply)
        ever_seen.update(inventory(session_factory))

    for _ in range(6):
        assigned = set(truth(sim, server_uuid))
        free = [serial for serial in owned if serial not in assigned]
        change = rng.random()
        if change < 0.35 and free:
            assign(sim, server_uuid, rng.sample(free, min(len(free), rng.randint(1, 6))))
        elif change < 0.6 and assigned:
            unassign(sim, rng.sample(sorted(assigned), min(len(assigned), rng.randint(1, 4))))
        elif assigned:
            for serial in rng.sample(sorted(assigned), min(len(assigned), 3)):
                patched = sim.portal.patch(f"/portal/devices/{serial}", json={"asset_tag": f"T-{rng.randrange(10**6)}"})
                assert patched.status_code == 200, patched.text
        if rng.random() < 0.1:
            clock.offset += online.dep_full_sync_interval  # a week passes: the next --full refreshes everything
        sync(full=rng.random() < 0.25, kill_after=rng.choice([None, None, 1, 2, 3]))

    # Apple recovers; Pippin must catch up on its own within a few runs (a run may stop on its window's end).
    assert sim.portal.put("/portal/faults", json={}).status_code == 200
    for _ in range(4):
        sync()
    apple = truth(sim, server_uuid)
    ours = inventory(session_factory)
    active = {serial: device for serial, device in ours.items() if device.apple_status != "removed"}
    assert set(active) == set(apple), f"seed {seed}: lost {set(apple) - set(active)}, extra {set(active) - set(apple)}"
    for serial, device in active.items():
        expected = apple[serial]
        assert device.apple_status == "assigned"
        got = (device.model, device.asset_tag, device.profile_status, device.color)
        want = (expected["model"], expected["asset_tag"], expected["profile_status"], expected["color"])
        assert got == want, f"seed {seed}: {serial} is {got}, Apple says {want}"
    removed = {serial for serial, device in ours.items() if device.apple_status == "removed"}
    assert removed == (ever_seen - set(apple)), f"seed {seed}: wrong removals"
    with transaction(session_factory) as session:
        rows = session.scalar(select(func.count()).select_from(Device))
        distinct = session.scalar(select(func.count(func.distinct(Device.serial_number))))
        assert rows == distinct == len(ours)


@pytest.fixture(autouse=True)
def _pooled_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_service, "generate_private_key", pooled_key_generator())


@pytest.mark.parametrize("seed", QUICK_SEEDS)
def test_the_inventory_equals_apples_truth_after_faults_and_kills(
    seed: int,
    session_factory: SessionFactory,
    settings: Settings,
    sim: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    soak(seed, session_factory=session_factory, settings=settings, sim=sim, monkeypatch=monkeypatch)


@pytest.mark.slow
@pytest.mark.skipif(not SLOW, reason="many seeds: set PIPPIN_SLOW_TESTS=1")
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_many_seeds(
    seed: int,
    session_factory: SessionFactory,
    settings: Settings,
    sim: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    soak(seed, session_factory=session_factory, settings=settings, sim=sim, monkeypatch=monkeypatch)
