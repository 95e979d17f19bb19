"""Seed step 8 end to end: devices switched on enroll over the air into a running Pippin, on SQLite and PostgreSQL.

Everything meets over real HTTP, as in ``make demo``: the simulated iPhone asks the simulated Apple for its cloud
configuration, posts its signed MachineInfo to Pippin, installs the signed profile, gets its identity over SCEP,
checks in (Authenticate, TokenUpdate) and waits on the simulated APNs. One Pippin per database serves the whole
module (``tests/e2e/seeded_pippin.py``); each test switches on devices of its own.

A device "killed" mid-enrollment is one whose power is cut at a step: :class:`PowerCut` is raised from its
progress report (or from its state directory's save) and nothing after that runs; a new device over the same
state directory is the same device switched on again, remembering only what it saved before the cut.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select

from pippin.admin.api_tokens import create_api_token
from pippin.inventory import devices as inventory
from pippin.inventory.state import DeviceState as InventoryState
from pippin.push.delivery import request_push, send_due_pushes
from pippin.sim.iphone import scep_client
from pippin.sim.iphone.checkin_client import MDMClient
from pippin.sim.iphone.device import SimulatedDevice
from pippin.sim.iphone.device_state import DeviceState, StateDirectory
from pippin.sim.iphone.errors import RemovalRefused, SetupFailed
from pippin.sim.iphone.fleet import boot_devices
from pippin.sim.iphone.identity import DeviceIdentity, fetch_from_factory
from pippin.sim.iphone.machine_info import signed_machine_info
from pippin.sim.iphone.profiles import MDM_TYPE, read_profile
from pippin.store.db import transaction
from pippin.store.models import CheckinMessage, Enrollment, IssuedCertificate, PushResult
from tests.actors import TEST_ACTOR
from tests.conftest import DATABASES, empty_database_url
from tests.e2e.seeded_pippin import STAFF_PROFILE, TOKEN, USER, SeededPippin, seeded_pippin
from tests.servers import resources_of

#: Devices per database of the default profile: two switched on, one killed at each of six steps, one whose
#: challenge is used twice, one pushed; and with user affinity: one switched on, one killed at each of two steps.
DEVICES, STAFF_DEVICES = 2 + 6 + 1 + 1, 1 + 2
#: An upper bound for a thread to react, never a timing the test measures.
WAIT_SECONDS = 30.0


@pytest.fixture(scope="module", params=DATABASES)
def pippin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededPippin]:
    directory = tmp_path_factory.mktemp(f"over-the-air-{request.param}")
    url = empty_database_url(request, request.param, directory)
    with seeded_pippin(url, directory, devices=DEVICES, staff_devices=STAFF_DEVICES) as seeded:
        yield seeded


class PowerCut(BaseException):
    """The device is switched off here: not a :class:`SetupFailed`, so nothing in the device catches it."""


def _cut_at(step: str) -> Callable[[str, str], None]:
    """A progress report that cuts the power when the device says it starts ``step``."""

    def progress(_serial: str, text: str) -> None:
        if text.startswith(step):
            raise PowerCut(step)

    return progress


class _CutBeforeSavingEnrolled(StateDirectory):
    """The device's storage, losing power as it is about to save that it is enrolled (TokenUpdate answered)."""

    def save(self, state: DeviceState) -> None:
        if state.enrolled:
            raise PowerCut("saving enrolled")
        super().save(state)


def _enrollments_of(pippin: SeededPippin, serial: str) -> list[Enrollment]:
    with transaction(pippin.session_factory) as session:
        found = session.scalars(select(Enrollment).where(Enrollment.serial_number == serial)).all()
        session.expunge_all()
        return list(found)


def _fingerprint(identity: DeviceIdentity) -> str:
    return hashlib.sha256(identity.certificate.public_bytes(Encoding.DER)).hexdigest()


def _connect(device: SimulatedDevice, identity: DeviceIdentity) -> int:
    """An Idle report at the ServerURL signed by ``identity``: the commands Pippin sent (SetupFailed if refused)."""
    profile = device.profiles.mdm_profile()
    assert profile is not None and device.state.facts is not None
    payload = profile.payload_of(MDM_TYPE)
    assert payload is not None
    with httpx.Client(timeout=30) as http:
        return MDMClient(http, mdm_payload=payload, identity=identity, facts=device.state.facts).connect()


def _checkins(pippin: SeededPippin, udid: str) -> list[tuple[str, str]]:
    """The check-in messages Pippin recorded from ``udid``, in order: their type and the identity that signed."""
    with transaction(pippin.session_factory) as session:
        rows = session.execute(
            select(CheckinMessage.message_type, CheckinMessage.identity_fingerprint)
            .where(CheckinMessage.udid == udid)
            .order_by(CheckinMessage.id)
        ).all()
    return [(kind, fingerprint) for kind, fingerprint in rows]


def test_devices_switched_on_enroll_and_are_listed_as_enrolled_one_with_its_primary_user(
    pippin: SeededPippin,
) -> None:
    direct = [pippin.device(pippin.take()) for _ in range(2)]
    staff = pippin.device(pippin.take(staff=True), user=USER, password=pippin.password)
    results = boot_devices([*direct, staff], concurrency=3)
    assert [(r.serial_number, r.enrolled, r.reason) for r in results] == [
        (d.serial_number, True, None) for d in (*direct, staff)
    ]

    for device in (*direct, staff):
        identity, facts = device.state.mdm_identity, device.state.facts
        assert identity is not None and facts is not None
        # The identity from Pippin's SCEP signed the device's check-ins, Authenticate then TokenUpdate.
        assert _checkins(pippin, facts.udid) == [
            ("Authenticate", _fingerprint(identity)),
            ("TokenUpdate", _fingerprint(identity)),
        ]

    # What an admin sees: the REST API's device list, enrolled only.
    with transaction(pippin.session_factory) as session:
        _, token = create_api_token(session, name="inventory", actor=TEST_ACTOR)
    answer = httpx.get(
        f"{pippin.url}/api/v1/devices",
        params={"state": "enrolled", "limit": 100},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    listed = {device["serial_number"]: device for device in answer.json()["devices"]}
    for device in (*direct, staff):
        facts = device.state.facts
        assert facts is not None and device.serial_number in listed
        shown = [listed[device.serial_number][key] for key in ("udid", "os_version", "product_name", "token")]
        assert shown == [facts.udid, facts.os_version, facts.product, TOKEN]
    by_staff = listed[staff.serial_number]
    assert (by_staff["primary_user"], by_staff["profile"]) == (USER, STAFF_PROFILE)
    assert [listed[d.serial_number]["primary_user"] for d in direct] == [None, None]


@dataclass(frozen=True)
class Cut:
    """Where the power is cut: as the device starts ``step`` (``None``: as it saves that it is enrolled); what
    Pippin holds for it then, and whether the device had saved an identity from Pippin's SCEP by then."""

    step: str | None
    pippin_status: str | None
    has_identity: bool


CUTS = {
    "after reading its factory facts": Cut("asking Apple for its cloud configuration", None, has_identity=False),
    "after the cloud configuration": Cut("posting its signed MachineInfo", None, has_identity=False),
    "after fetching the profile": Cut("installing the enrollment profile", None, has_identity=False),
    "after SCEP": Cut("checking in: Authenticate", None, has_identity=True),
    "after Authenticate": Cut("checking in: TokenUpdate", "enrolling", has_identity=True),
    "after TokenUpdate, before saving enrolled": Cut(None, "enrolled", has_identity=True),
}


#: Every cut on a device of the default profile; on one with user affinity, after its user signed in (the profile
#: was fetched) and after Authenticate.
KILLS = [*((where, False) for where in CUTS), ("after fetching the profile", True), ("after Authenticate", True)]


@pytest.mark.parametrize(
    ("where", "staff"), KILLS, ids=[f"{where}{', signed in' if staff else ''}" for where, staff in KILLS]
)
def test_a_device_killed_during_enrollment_starts_again_and_enrolls_once(
    pippin: SeededPippin, where: str, staff: bool
) -> None:
    serial, cut = pippin.take(staff=staff), CUTS[where]
    user, password = (USER, pippin.password) if staff else (None, None)
    killed = (
        pippin.device(serial, progress=_cut_at(cut.step), user=user, password=password)
        if cut.step is not None
        else pippin.device(serial, states=_CutBeforeSavingEnrolled(pippin.states.directory))
    )
    with pytest.raises(PowerCut):
        killed.boot()
    assert [e.status for e in _enrollments_of(pippin, serial)] == ([cut.pippin_status] if cut.pippin_status else [])
    # What the device kept across the cut: the identity Pippin issued before it, once SCEP had run.
    earlier_identity = pippin.states.load(serial).mdm_identity
    assert (earlier_identity is not None) == cut.has_identity

    again = pippin.device(serial, user=user, password=password)
    again.boot()
    assert again.state.enrolled and again.state.mdm_identity is not None and again.state.facts is not None
    (enrollment,) = _enrollments_of(pippin, serial)
    assert (enrollment.status, enrollment.udid) == ("enrolled", again.state.facts.udid)
    assert enrollment.identity_fingerprint == _fingerprint(again.state.mdm_identity)
    assert enrollment.push_magic == again.state.push_magic
    assert _connect(again, again.state.mdm_identity) == 0, "the device's check-ins authenticate"
    if earlier_identity is not None:
        # The identity of the interrupted attempt speaks for nobody now; Pippin answers 400, never 401.
        with pytest.raises(SetupFailed, match="HTTP 400"):
            _connect(again, earlier_identity)
    with transaction(pippin.session_factory) as session:
        shown = inventory.get_device(session, serial=serial)
    assert (shown.enrollment_state, shown.primary_user) == (InventoryState.enrolled, user)


def test_an_enrollment_challenge_gets_one_certificate_and_is_refused_the_second_time(pippin: SeededPippin) -> None:
    serial = pippin.take()
    with httpx.Client(base_url=pippin.apple.base_url, timeout=30) as apple:
        facts, factory_identity = fetch_from_factory(apple, serial)
        configuration = apple.post("/activation/cloud-configuration", json={"serial_number": serial})
    assert configuration.status_code == 200, configuration.text
    with httpx.Client(timeout=30) as http:
        served = http.post(
            configuration.json()["ConfigurationURL"],
            content=signed_machine_info(facts, factory_identity),
            headers={"Content-Type": "application/pkcs7-signature"},
        )
        assert served.status_code == 200, served.text
        profile = read_profile(served.content, trusted=[pippin.pippin_ca])
        scep = scep_client.SCEPPayload.from_payload(profile.payload_of("com.apple.security.scep") or {})
        assert scep.challenge

        first = scep_client.enroll(http, scep)
        assert first.certificate.subject == scep.subject
        issued = _issued_certificates(pippin)
        with pytest.raises(SetupFailed, match=r"the CA refused the request \(badRequest\)"):
            scep_client.enroll(http, scep)
    assert _issued_certificates(pippin) == issued, "no certificate is recorded for the second request"


def _issued_certificates(pippin: SeededPippin) -> int:
    with transaction(pippin.session_factory) as session:
        return session.scalar(select(func.count()).select_from(IssuedCertificate)) or 0


def _last_seen(pippin: SeededPippin, serial: str) -> datetime | None:
    (enrollment,) = _enrollments_of(pippin, serial)
    return enrollment.last_seen_at


def test_a_push_from_pippin_wakes_the_device_which_connects_and_its_user_cannot_remove_the_locked_profile(
    pippin: SeededPippin,
) -> None:
    device = pippin.device(pippin.take())
    device.boot()
    facts = device.state.facts
    assert facts is not None
    seen = _last_seen(pippin, device.serial_number)

    stop = threading.Event()

    def pushed(_serial: str, text: str) -> None:
        if text.startswith("pushed"):
            stop.set()  # the device connects now, then stops waiting for more

    # The same device, switched on again: enrolled, it only waits on APNs.
    waiting = pippin.device(device.serial_number, progress=pushed)
    connects: list[int] = []
    waiter = threading.Thread(target=lambda: connects.append(waiting.wait_for_pushes(stop, wait_seconds=1.0)))
    waiter.start()
    try:
        resources = resources_of(pippin.server)
        with transaction(pippin.session_factory) as session:
            assert request_push(session, udid=facts.udid, settings=pippin.settings, actor=TEST_ACTOR)
        report = send_due_pushes(
            pippin.session_factory,
            sender=resources.apns,
            load_identity=resources.load_push_identity,
            record_certificate_refusal=resources.record_push_certificate_refusal,
            settings=pippin.settings,
        )
        assert report.outcomes == {PushResult.delivered: 1}, report
        waiter.join(WAIT_SECONDS)
    finally:
        stop.set()
        waiter.join(WAIT_SECONDS)
    assert connects == [1], "woken by the push, the device connected once: Idle, answered 200 with no command"
    connected = _last_seen(pippin, device.serial_number)
    assert seen is not None and connected is not None and connected > seen

    mdm_profile = device.profiles.mdm_profile()
    assert mdm_profile is not None
    with pytest.raises(RemovalRefused):
        device.remove_profile(mdm_profile.identifier)
    identity = device.state.mdm_identity
    assert device.state.enrolled and device.profiles.mdm_profile() is not None and identity is not None
    assert _connect(device, identity) == 0, "still managed: its check-ins authenticate"
