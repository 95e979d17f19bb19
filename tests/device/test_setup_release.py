"""Releasing a device from Setup Assistant over the device endpoints: the first TokenUpdate awaiting configuration
queues its profile's enrollment-time commands (once), their answers queue DeviceConfigured (once), and the device
views show a device stuck past PIPPIN_SETUP_STUCK_AFTER with the step it waits on. Real captures, both databases."""

from __future__ import annotations

import plistlib
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from pippin.admin.audit import Actor, Interface
from pippin.config import Settings
from pippin.inventory import devices as inventory_service
from pippin.mdm import setup_commands as setup_service
from pippin.mdm.setup_schemas import SetupCommandCreate, SetupProblemKind, SetupWatch
from pippin.store.models import (
    Command,
    CommandStatus,
    DEPProfile,
    Enrollment,
    PushDelivery,
    SetupCommandKind,
    SetupRelease,
)
from tests.conftest import fixture_path
from tests.device.conftest import DeviceServer, build_device_server
from tests.mdm.command_samples import profile
from tests.mdm.device_identities import NOW
from tests.servers import resources_of

UDID = "663b07bb783e9ade1dae4fbb92ea12afc0ce5b69"
SERIAL = "F5JM992LF193"
ADMIN = Actor(name="ops@example.com", interface=Interface.cli)


@pytest.fixture
def devices(settings: Settings) -> Iterator[DeviceServer]:
    built = build_device_server(settings)
    with built.client:
        yield built
    resources_of(built.client.app).engine.dispose()  # type: ignore[arg-type]


def awaiting_profile(devices: DeviceServer, *steps: SetupCommandCreate | bytes, await_configured: bool = True) -> int:
    """A supervised DEP profile that awaits configuration, with ``steps`` (a .mobileconfig as bytes, or a create)."""
    box = resources_of(devices.client.app).secret_box  # type: ignore[arg-type]
    with devices.session() as session, session.begin():
        dep_profile = DEPProfile(name="Staff", is_supervised=True, await_device_configured=await_configured)
        session.add(dep_profile)
        session.flush()
        for step in steps:
            if isinstance(step, bytes):
                data, payload = SetupCommandCreate(kind=SetupCommandKind.install_profile), step
            else:
                data, payload = step, None
            setup_service.add_setup_command(
                session, profile_name="Staff", data=data, payload=payload, box=box, actor=ADMIN, now=NOW
            )
        return dep_profile.id


def name_step(template: str = "iPad-{serial}") -> SetupCommandCreate:
    return SetupCommandCreate(kind=SetupCommandKind.device_name, template=template)


def token_update(awaiting: bool | None = True) -> bytes:
    message = plistlib.loads(fixture_path("nanomdm", "TokenUpdate.1.plist").read_bytes())
    if awaiting is None:
        message.pop("AwaitingConfiguration", None)
    else:
        message["AwaitingConfiguration"] = awaiting
    return plistlib.dumps(message)


def enroll(devices: DeviceServer, profile_id: int | None, *, awaiting: bool | None = True):  # type: ignore[no-untyped-def]
    identity = devices.identities.issue(serial_number=SERIAL, profile_id=profile_id, profile_revision=1)
    body = fixture_path("nanomdm", "Authenticate.1.plist").read_bytes()
    assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 200
    body = token_update(awaiting)
    assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 200
    return identity


def queue(devices: DeviceServer) -> list[Command]:
    with devices.session() as session:
        rows = list(session.scalars(select(Command).where(Command.udid == UDID).order_by(Command.id)))
        session.expunge_all()
        return rows


def report(devices: DeviceServer, identity, status: str, command_uuid: str | None = None, **fields: object) -> bytes:  # type: ignore[no-untyped-def]
    """The device's report at the ServerURL; the body of the command it is handed next (empty: none)."""
    message: dict[str, object] = {"Status": status, "UDID": UDID, **fields}
    if command_uuid is not None:
        message["CommandUUID"] = command_uuid
    body = plistlib.dumps(message)
    answer = devices.put("connect", body, signature=identity.sign(body))
    assert answer.status_code == 200, answer.text
    return answer.content


def handed(content: bytes) -> tuple[str, dict[str, object]]:
    command = plistlib.loads(content)
    return command["CommandUUID"], command["Command"]


def problem_of(devices: DeviceServer):  # type: ignore[no-untyped-def]
    watch = SetupWatch(now=devices.clock(), stuck_after=devices.settings.setup_stuck_after)
    with devices.session() as session:
        shown = inventory_service.get_device(session, serial=SERIAL, setup_watch=watch)
        listed = inventory_service.list_devices(session, setup_watch=watch).devices
    assert [device.setup_problem for device in listed] == [shown.setup_problem]
    return shown.setup_problem


def test_the_first_token_update_awaiting_configuration_queues_the_profiles_commands_in_order(
    devices: DeviceServer,
) -> None:
    profile_id = awaiting_profile(devices, profile(), name_step())
    enroll(devices, profile_id)
    first, second = queue(devices)
    assert (first.request_type, second.request_type) == ("InstallProfile", "Settings")
    assert first.actor == second.actor == "pippin (setup release)"
    assert b"correct horse" not in first.body_encrypted  # the Wi-Fi password stays sealed in the queue
    box = resources_of(devices.client.app).secret_box  # type: ignore[arg-type]
    settings_command = plistlib.loads(box.decrypt(second.body_encrypted))
    assert settings_command["Settings"] == [{"Item": "DeviceName", "DeviceName": f"iPad-{SERIAL}"}]
    with devices.session() as session:
        assert session.get(PushDelivery, UDID) is not None  # the push is wanted, sent after the commit


def test_a_repeated_token_update_queues_nothing_more(devices: DeviceServer) -> None:
    profile_id = awaiting_profile(devices, profile(), name_step())
    identity = enroll(devices, profile_id)
    before = [command.command_uuid for command in queue(devices)]
    body = token_update(True)
    for _ in range(2):
        assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 200
    assert [command.command_uuid for command in queue(devices)] == before


def test_a_re_enrollment_starts_a_new_release_under_new_command_uuids(devices: DeviceServer) -> None:
    profile_id = awaiting_profile(devices, name_step())
    enroll(devices, profile_id)
    (first,) = queue(devices)
    enroll(devices, profile_id)  # a new identity: the device was erased and enrolled again
    old, new = queue(devices)
    assert (old.command_uuid, old.status) == (first.command_uuid, CommandStatus.canceled)
    assert new.command_uuid != first.command_uuid and new.status is CommandStatus.queued


def test_without_commands_device_configured_is_queued_at_once(devices: DeviceServer) -> None:
    identity = enroll(devices, awaiting_profile(devices))
    (configured,) = queue(devices)
    assert configured.request_type == "DeviceConfigured"
    command_uuid, command = handed(report(devices, identity, "Idle"))
    assert (command_uuid, command) == (configured.command_uuid, {"RequestType": "DeviceConfigured"})
    assert report(devices, identity, "Acknowledged", command_uuid) == b""
    with devices.session() as session:
        enrollment = session.get(Enrollment, UDID)
        assert enrollment is not None and enrollment.awaiting_configuration is False
    devices.clock.advance(hours=2)
    assert problem_of(devices) is None


@pytest.mark.parametrize("awaiting", [False, None])
def test_a_device_not_awaiting_configuration_gets_nothing(devices: DeviceServer, awaiting: bool | None) -> None:
    enroll(devices, awaiting_profile(devices, name_step()), awaiting=awaiting)
    assert queue(devices) == []


def test_a_device_that_says_it_awaits_is_released_even_when_its_profile_stopped_awaiting(
    devices: DeviceServer,
) -> None:
    enroll(devices, awaiting_profile(devices, await_configured=False))
    assert [command.request_type for command in queue(devices)] == ["DeviceConfigured"]


def test_the_answers_queue_device_configured_exactly_once(devices: DeviceServer) -> None:
    identity = enroll(devices, awaiting_profile(devices, profile(), name_step()))
    install_uuid, _ = handed(report(devices, identity, "Idle"))
    name_uuid, _ = handed(report(devices, identity, "Acknowledged", install_uuid))
    assert [command.request_type for command in queue(devices)] == ["InstallProfile", "Settings"]
    configured_uuid, command = handed(report(devices, identity, "Acknowledged", name_uuid))
    assert command == {"RequestType": "DeviceConfigured"}
    report(devices, identity, "Acknowledged", name_uuid)  # a replayed answer
    assert [command.request_type for command in queue(devices)] == ["InstallProfile", "Settings", "DeviceConfigured"]
    assert report(devices, identity, "Acknowledged", configured_uuid) == b""
    devices.clock.advance(hours=1)
    assert problem_of(devices) is None


def test_a_failed_step_still_releases_the_device_and_is_its_problem(devices: DeviceServer) -> None:
    identity = enroll(devices, awaiting_profile(devices, profile(), name_step()))
    install_uuid, _ = handed(report(devices, identity, "Idle"))
    chain = [{"ErrorCode": 4001, "ErrorDomain": "MCProfileErrorDomain", "USEnglishDescription": "Wi-Fi\u202e bad"}]
    name_uuid, _ = handed(report(devices, identity, "Error", install_uuid, ErrorChain=chain))
    configured_uuid, _ = handed(report(devices, identity, "Acknowledged", name_uuid))
    failed = problem_of(devices)  # shown at once: it is not a wait
    assert failed is not None and failed.kind is SetupProblemKind.failed
    assert "step 1 (InstallProfile Wi-Fi) failed: Wi-Fi bad (MCProfileErrorDomain 4001)" in failed.reason
    assert "\u202e" not in failed.reason
    report(devices, identity, "Acknowledged", configured_uuid)
    released = problem_of(devices)
    assert released is not None and released.reason.startswith("Released from Setup Assistant, but step 1")


def test_not_now_keeps_the_release_waiting_and_the_stuck_problem_says_so(devices: DeviceServer) -> None:
    identity = enroll(devices, awaiting_profile(devices, name_step()))
    name_uuid, _ = handed(report(devices, identity, "Idle"))
    assert report(devices, identity, "NotNow", name_uuid) == b""
    assert [command.request_type for command in queue(devices)] == ["Settings"]
    handed(report(devices, identity, "Idle"))
    report(devices, identity, "NotNow", name_uuid)
    devices.clock.advance(minutes=29)
    assert problem_of(devices) is None  # not yet past PIPPIN_SETUP_STUCK_AFTER (30 minutes)
    devices.clock.advance(minutes=1)
    stuck = problem_of(devices)
    assert stuck is not None and stuck.kind is SetupProblemKind.stuck and stuck.awaiting_since == NOW
    assert stuck.reason == "Still in Setup Assistant: step 1 (Settings iPad-{serial}) answered NotNow 2 times"


def test_the_stuck_problem_names_the_step_the_device_waits_on(devices: DeviceServer) -> None:
    identity = enroll(devices, awaiting_profile(devices, profile(), name_step()))
    devices.clock.advance(hours=1)

    def reason() -> str:
        stuck = problem_of(devices)
        assert stuck is not None and stuck.kind is SetupProblemKind.stuck
        return stuck.reason.removeprefix("Still in Setup Assistant: ")

    assert reason() == "step 1 (InstallProfile Wi-Fi) not yet fetched by the device"
    install_uuid, _ = handed(report(devices, identity, "Idle"))
    assert reason() == "step 1 (InstallProfile Wi-Fi) handed to the device 1 times, no answer yet"
    name_uuid, _ = handed(report(devices, identity, "Acknowledged", install_uuid))
    assert reason() == "step 2 (Settings iPad-{serial}) handed to the device 1 times, no answer yet"
    handed(report(devices, identity, "Acknowledged", name_uuid))
    assert reason() == "DeviceConfigured handed to the device 1 times, no answer yet"


def test_a_device_configured_refused_is_the_devices_problem(devices: DeviceServer) -> None:
    identity = enroll(devices, awaiting_profile(devices))
    configured_uuid, _ = handed(report(devices, identity, "Idle"))
    chain = [{"ErrorCode": 101, "ErrorDomain": "MDMDeviceEnrollment", "LocalizedDescription": "Not awaiting"}]
    report(devices, identity, "Error", configured_uuid, ErrorChain=chain)
    devices.clock.advance(hours=1)
    stuck = problem_of(devices)
    assert stuck is not None and stuck.kind is SetupProblemKind.stuck
    assert "DeviceConfigured failed: Not awaiting (MDMDeviceEnrollment 101)" in stuck.reason


def test_a_device_enrolled_before_releases_were_automatic_is_shown_stuck(devices: DeviceServer) -> None:
    enroll(devices, None, awaiting=False)
    with devices.session() as session, session.begin():
        enrollment = session.get(Enrollment, UDID)
        assert enrollment is not None
        enrollment.awaiting_configuration = True  # what an older release recorded, and never acted on
    devices.clock.advance(minutes=31)
    stuck = problem_of(devices)
    assert stuck is not None and "Pippin queued no DeviceConfigured" in stuck.reason


def test_the_device_views_without_a_watch_show_no_problem(devices: DeviceServer) -> None:
    enroll(devices, awaiting_profile(devices))
    devices.clock.advance(hours=1)
    with devices.session() as session:
        device = inventory_service.get_device(session, serial=SERIAL)
    assert device.awaiting_configuration is True and device.setup_problem is None


def test_the_stuck_setting_is_a_duration(settings: Settings) -> None:
    assert settings.setup_stuck_after == timedelta(minutes=30)


def test_a_refused_token_update_queues_nothing(devices: DeviceServer) -> None:
    profile_id = awaiting_profile(devices, name_step())
    identity = devices.identities.issue(serial_number=SERIAL, profile_id=profile_id, profile_revision=1)
    body = fixture_path("nanomdm", "Authenticate.1.plist").read_bytes()
    assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 200
    message = plistlib.loads(token_update(True))
    del message["PushMagic"]
    body = plistlib.dumps(message)
    assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 400
    assert queue(devices) == []
    with devices.session() as session:
        assert session.scalars(select(SetupRelease)).all() == []
