"""The command soak: simulated devices enrolled into a ``pippin serve`` process, random commands queued through
the REST API, APNs faults, devices going offline and coming back, and ``pippin serve`` killed with SIGKILL at
random moments, on SQLite and PostgreSQL.

At the end every command is finished (acknowledged, error, expired or canceled); every bulk request the API
accepted has exactly one command per device it counted (none lost, none twice, though the request was sent again
whenever the server died before answering); what Pippin stored for each command is what the device says it
answered, and no device ran a command twice; and each device's inventory equals what it answered last.

Slow by design (a thousand devices by default), so it runs only with ``PIPPIN_SOAK=1`` (``make soak``).
``PIPPIN_SOAK_DEVICES`` and ``PIPPIN_SOAK_SECONDS`` size it. Time only paces the faults; no assertion depends on
how long anything took (the drain has a generous deadline, a bound, not a measurement).
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from sqlalchemy import func, select

from pippin.admin.api_tokens import create_api_token
from pippin.sim.iphone.answer_rates import AnswerRates
from pippin.sim.iphone.device import SimulatedDevice
from pippin.sim.iphone.device_facts import query_responses
from pippin.sim.iphone.fleet import boot_devices
from pippin.store.db import transaction
from pippin.store.models import WAITING, APITokenScope, Command, CommandStatus, Enrollment, PushDelivery
from tests.actors import TEST_ACTOR
from tests.conftest import DATABASES, empty_database_url
from tests.e2e.seeded_pippin import SeededPippin, seeded_pippin
from tests.soak.serve_process import ServeProcess, settings_environment

pytestmark = pytest.mark.skipif(os.environ.get("PIPPIN_SOAK") != "1", reason="the soak runs with PIPPIN_SOAK=1")

DEVICES = int(os.environ.get("PIPPIN_SOAK_DEVICES", "1000"))
SOAK_SECONDS = float(os.environ.get("PIPPIN_SOAK_SECONDS", "90"))
#: A bound for the queue to drain once the faults stop, on a busy machine: not a timing the test measures.
DRAIN_DEADLINE_SECONDS = 900.0
#: How long a device's wait on APNs lasts before it asks again (short, so that offline devices react).
PUSH_WAIT_SECONDS = 5.0
#: How often the devices whose last DeviceInformation failed are asked again at the end (each fails one in 20).
FINAL_INFORMATION_ROUNDS = 5
RATES = AnswerRates(not_now_rate=0.1, error_rate=0.05, seed=20261203)
APNS_FAULTS = {"rates": {"post_apns_device": {"service_unavailable": 0.1, "dropped_connection": 0.05}}}

#: The commands the soak sends: (RequestType, payload, share of the requests).
MENU: list[tuple[str, dict[str, Any], int]] = [
    ("DeviceInformation", {}, 4),
    ("SecurityInfo", {}, 2),
    ("ProfileList", {}, 2),
    ("CertificateList", {}, 1),
    ("InstalledApplicationList", {}, 1),
    ("DeviceLock", {"Message": "Found? Call IT on +46 8 123 45"}, 1),
    ("RestartDevice", {}, 1),
    ("Settings", {"Settings": [{"Item": "DeviceName", "DeviceName": "renamed"}]}, 2),
]
_FINAL_REPORTS = {"Acknowledged": CommandStatus.acknowledged, "Error": CommandStatus.error}


@dataclass
class Listener:
    """A device waiting on APNs in a thread of its own until ``stop`` is set (it goes offline)."""

    device: SimulatedDevice
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            # Still in the session it was in when it went offline: never two threads on one device's state.
            self.thread.join(timeout=PUSH_WAIT_SECONDS * 12)
            assert not self.thread.is_alive(), f"{self.device.serial_number} never stopped listening"
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self.device.wait_for_pushes, args=(self.stop,), kwargs={"wait_seconds": PUSH_WAIT_SECONDS}
        )
        self.thread.daemon = True
        self.thread.start()

    def go_offline(self) -> None:
        self.stop.set()
        self.join()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(timeout=PUSH_WAIT_SECONDS * 12)


@dataclass
class SoakRecord:
    """What the driver was told: each accepted bulk request and how many devices it counted."""

    accepted: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    canceled: int = 0
    kinds: Counter[str] = field(default_factory=Counter)


class Driver:
    """Sends random commands through the REST API as an admin's script would, retrying every request with the same
    bulk id until the API answers (the server may be dead at any moment)."""

    def __init__(self, url: str, token: str, serials: list[str], rng: random.Random) -> None:
        self.client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self.serials = serials
        self.rng = rng
        self.record = SoakRecord()

    def send(self, request_type: str, payload: dict[str, Any], serials: list[str], **extra: Any) -> None:
        bulk_id = str(uuid.uuid4())
        body = {"request_type": request_type, "payload": payload, "serials": serials, "bulk_id": bulk_id, **extra}
        for _ in range(600):
            try:
                answer = self.client.post("/api/v1/commands", json=body)
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code == 202:
                self.record.accepted[bulk_id] = answer.json()["devices"] + answer.json()["already_queued"]
                self.record.kinds[request_type] += 1
                return
            assert answer is None or answer.status_code >= 500, answer.text
            self.record.retries += 1
            time.sleep(0.2)
        raise AssertionError(f"the API never accepted {request_type} for {len(serials)} devices")

    def close(self) -> None:
        self.client.close()

    def send_random(self) -> None:
        request_type, payload, _ = self.rng.choices(MENU, weights=[weight for *_, weight in MENU])[0]
        if request_type == "Settings":
            payload = {"Settings": [{"Item": "DeviceName", "DeviceName": f"Soak {self.rng.randrange(10**6)}"}]}
        chosen = self.rng.sample(self.serials, k=self.rng.randint(1, min(50, len(self.serials))))
        extra = {"expires_in": "PT3S"} if self.rng.random() < 0.05 else {}
        self.send(request_type, payload, chosen, **extra)

    def cancel_one(self) -> None:
        serial = self.rng.choice(self.serials)
        try:
            listed = self.client.get(f"/api/v1/devices/{serial}/commands", params={"limit": 20})
            queued = [c for c in listed.json() if c["status"] == "queued"] if listed.status_code == 200 else []
            if queued:
                uuid_ = queued[0]["command_uuid"]
                answer = self.client.post(f"/api/v1/devices/{serial}/commands/{uuid_}/cancel")
                if answer.status_code == 200:
                    self.record.canceled += 1
        except (httpx.HTTPError, ValueError):
            pass  # the server died meanwhile: a cancel is best effort, like an admin's click


def _kill_now_and_then(serve: ServeProcess, done: threading.Event, rng: random.Random) -> None:
    """SIGKILL ``pippin serve`` every few seconds, whatever it is doing, and start it again."""
    while not done.wait(rng.uniform(3, 8)):
        serve.kill()
        done.wait(rng.uniform(0, 1))
        serve.start()


def _take_devices_offline(
    listeners: dict[str, Listener], offline: set[str], done: threading.Event, rng: random.Random
) -> None:
    """Now and then a device stops listening for a while (out of coverage, switched off) and comes back."""
    back_at: dict[str, float] = {}
    serials = sorted(listeners)
    while not done.wait(0.5):
        now = time.monotonic()
        serial = rng.choice(serials)
        if serial not in offline and rng.random() < 0.5:
            listeners[serial].go_offline()
            offline.add(serial)
            back_at[serial] = now + rng.uniform(5, 15)
        for gone, when in list(back_at.items()):
            if now >= when:
                listeners[gone].start()
                offline.discard(gone)
                del back_at[gone]


def _faults(apple: Any, config: dict[str, Any]) -> None:
    answer = apple.portal.put("/portal/faults", json=config)
    assert answer.status_code == 200, answer.text


@pytest.fixture(params=DATABASES)
def soak_pippin(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SeededPippin]:
    url = empty_database_url(request, request.param, tmp_path)
    with seeded_pippin(url, tmp_path, devices=DEVICES, staff_devices=1, serve=False) as seeded:
        yield seeded


def test_commands_survive_kills_faults_and_offline_devices(soak_pippin: SeededPippin, tmp_path: Path) -> None:
    seeded = soak_pippin
    port = urlparse(seeded.url).port
    assert port is not None
    serve = ServeProcess(settings_environment(seeded.settings), port=port, log=tmp_path / "serve.log")
    serve.start()
    try:
        _soak(seeded, serve)
    finally:
        serve.stop()


def _soak(seeded: SeededPippin, serve: ServeProcess) -> None:
    rng = random.Random(20261203)
    with transaction(seeded.session_factory) as session:
        _, token = create_api_token(session, name="soak", actor=TEST_ACTOR, scope=APITokenScope.read_write)
    serials = seeded.serials[:DEVICES]
    devices = [
        SimulatedDevice(
            sim_url=seeded.apple.base_url, serial_number=s, states=seeded.states, trust=[seeded.pippin_ca], rates=RATES
        )
        for s in serials
    ]
    booted = boot_devices(devices, concurrency=8)
    failed = [result for result in booted if not result.enrolled]
    assert not failed, failed[:5]
    listeners = {device.serial_number: Listener(device) for device in devices}
    for listener in listeners.values():
        listener.start()
    driver = Driver(serve.url, token, serials, rng)
    done = threading.Event()
    offline: set[str] = set()
    chaos = [
        threading.Thread(target=_kill_now_and_then, args=(serve, done, random.Random(1)), daemon=True),
        threading.Thread(target=_take_devices_offline, args=(listeners, offline, done, random.Random(2)), daemon=True),
    ]
    _faults(seeded.apple, APNS_FAULTS)
    for thread in chaos:
        thread.start()
    started = time.monotonic()
    try:
        while time.monotonic() - started < SOAK_SECONDS:
            driver.send_random()
            if rng.random() < 0.2:
                driver.cancel_one()
    finally:
        done.set()
        for thread in chaos:
            thread.join(timeout=120)
    assert serve.kills >= 1, f"pippin serve was never killed in {SOAK_SECONDS} s"
    if not serve.running():
        serve.start()

    # The faults stop; every device comes back and is asked for its information, which wakes it for what waits.
    _faults(seeded.apple, {})
    for serial in list(offline):
        listeners[serial].start()
    driver.send("DeviceInformation", {}, serials)
    _drain(seeded)
    # A device fails a share of its commands (RATES), its last DeviceInformation too, perhaps: asked again until
    # each has answered one, so that the inventory is what it said after its last change.
    for _ in range(FINAL_INFORMATION_ROUNDS):
        unanswered = _without_final_information(seeded, serials)
        if not unanswered:
            break
        driver.send("DeviceInformation", {}, unanswered)
        _drain(seeded)
    driver.close()
    for listener in listeners.values():
        listener.stop.set()  # all at once: one by one, a thousand devices each finishing a wait take an hour
    for listener in listeners.values():
        listener.join()
    _check(seeded, driver.record, serials)
    print(f"soak: pippin serve killed {serve.kills} times")


def _without_final_information(seeded: SeededPippin, serials: list[str]) -> list[str]:
    """The devices whose newest DeviceInformation was not acknowledged."""
    newest = (
        select(Command.udid, func.max(Command.id).label("newest"))
        .where(Command.request_type == "DeviceInformation")
        .group_by(Command.udid)
        .subquery()
    )
    with transaction(seeded.session_factory) as session:
        acknowledged = set(
            session.scalars(
                select(Enrollment.serial_number)
                .join(newest, newest.c.udid == Enrollment.udid)
                .join(Command, Command.id == newest.c.newest)
                .where(Command.status == CommandStatus.acknowledged)
            )
        )
    return [serial for serial in serials if serial not in acknowledged]


def _waiting(seeded: SeededPippin) -> int:
    with transaction(seeded.session_factory) as session:
        return session.scalar(select(func.count()).select_from(Command).where(Command.status.in_(WAITING))) or 0


def _drain(seeded: SeededPippin) -> None:
    deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
    while (left := _waiting(seeded)) > 0:
        assert time.monotonic() < deadline, (
            f"{left} commands still waiting after {DRAIN_DEADLINE_SECONDS} s: {_stuck(seeded)}"
        )
        time.sleep(1.0)


def _stuck(seeded: SeededPippin) -> list[tuple[Any, ...]]:
    """What the waiting commands wait on: each device's commands by status, and its push row."""
    with transaction(seeded.session_factory) as session:
        rows = session.execute(
            select(Command.udid, Command.status, func.count(), PushDelivery.attempts, PushDelivery.next_attempt_at,
                   PushDelivery.claim, PushDelivery.wanted_at, PushDelivery.last_result, Enrollment.last_seen_at)
            .join(Enrollment, Enrollment.udid == Command.udid)
            .outerjoin(PushDelivery, PushDelivery.udid == Command.udid)
            .where(Command.status.in_(WAITING))
            .group_by(Command.udid, Command.status, PushDelivery.attempts, PushDelivery.next_attempt_at,
                      PushDelivery.claim, PushDelivery.wanted_at, PushDelivery.last_result, Enrollment.last_seen_at)
        ).all()  # fmt: skip
    return [tuple(row) for row in rows[:10]]


def _check(seeded: SeededPippin, record: SoakRecord, serials: list[str]) -> None:
    with transaction(seeded.session_factory) as session:
        commands = list(session.scalars(select(Command)))
        enrollments = {e.serial_number: e for e in session.scalars(select(Enrollment))}
    by_bulk = Counter(command.bulk_id for command in commands)
    lost_or_doubled = {
        bulk_id: (expected, by_bulk.get(bulk_id, 0))
        for bulk_id, expected in record.accepted.items()
        if by_bulk.get(bulk_id, 0) != expected
    }
    assert not lost_or_doubled, list(lost_or_doubled.items())[:5]
    unfinished = [c.command_uuid for c in commands if c.status in WAITING]
    assert not unfinished, unfinished[:5]
    by_udid: dict[str, list[Command]] = {}
    for command in commands:
        by_udid.setdefault(command.udid, []).append(command)
    for serial in serials:
        state = seeded.states.load(serial)
        enrollment = enrollments[serial]
        assert state.facts is not None and enrollment.udid == state.facts.udid
        stored = {c.command_uuid: c for c in by_udid.get(enrollment.udid, [])}
        answered = state.managed.answered
        phantom = set(answered) - set(stored)
        assert not phantom, (serial, sorted(phantom)[:3])
        for command_uuid, command in stored.items():
            said = answered.get(command_uuid)
            if command.status in (CommandStatus.acknowledged, CommandStatus.error):
                assert said is not None, (serial, command_uuid, command.request_type, "stored but never answered")
                assert _FINAL_REPORTS.get(said, CommandStatus.error) is command.status, (serial, command_uuid)
            elif said is not None:
                # Expired or canceled after the device had it: its late answer is stored as it came, unless the
                # answer died with the server and the command expired before the device could say it again.
                assert command.report_status in (said, None), (serial, command_uuid, command.status, said)
        told = query_responses(state, ["DeviceName", "OSVersion", "BuildVersion"])
        inventory = {
            "DeviceName": enrollment.device_name,
            "OSVersion": enrollment.os_version,
            "BuildVersion": enrollment.build_version,
        }
        assert inventory == told, (serial, inventory, told)
    statuses = Counter(command.status.value for command in commands)
    print(f"soak: {len(serials)} devices, {len(commands)} commands {dict(statuses)}, {record.retries} retries, "
          f"{record.canceled} canceled by the driver, kinds {dict(record.kinds)}")  # fmt: skip
