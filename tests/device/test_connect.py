"""PUT /mdm/connect, the ServerURL, over HTTP: each answer a device gives (Acknowledged, Error, CommandFormatError,
NotNow) is stored and the next command comes back in the same response; answers the server did not ask for, and
hostile bodies, are refused (400/413, never 401 or 500) and change nothing."""

from __future__ import annotations

import plistlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from pippin.mdm.command_catalog import build_command
from pippin.mdm.command_queue import enqueue_command
from pippin.store.models import Command, CommandStatus, Enrollment, EnrollmentStatus
from tests.device.conftest import DeviceServer
from tests.device.test_checkin import UDID, capture, enroll
from tests.servers import resources_of

OTHER_UDID = "0000000000000000000000000000000000000042"


def queue(devices: DeviceServer, request_type: str, payload: dict[str, Any] | None = None, **options: Any) -> str:
    """Queue ``request_type`` for the enrolled device ``UDID`` as the API would; its CommandUUID."""
    resources = resources_of(devices.client.app)  # type: ignore[arg-type]
    with devices.session() as session, session.begin():
        command = enqueue_command(
            session,
            udid=options.pop("udid", UDID),
            queued=build_command(request_type, payload or {}),
            box=resources.secret_box,
            settings=devices.settings,
            now=devices.clock(),
            actor=None,
            **options,
        )
        return command.command_uuid


def commands(devices: DeviceServer) -> dict[str, tuple[CommandStatus, str | None, int]]:
    """Each command's status, the report status stored and how often it was handed out."""
    with devices.session() as session:
        return {
            command.command_uuid: (command.status, command.report_status, command.deliveries)
            for command in session.scalars(select(Command))
        }


def connect(devices: DeviceServer, identity: Any, **report: Any) -> Any:
    body = plistlib.dumps({"UDID": UDID, **report})
    return devices.put("connect", body, signature=identity.sign(body))


def handed_out(answer: Any) -> dict[str, Any]:
    """The command in a 200 answer, checked to be what Apple's devices read: an XML plist with its UUID."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    assert answer.content.startswith(b"<?xml")
    command: dict[str, Any] = plistlib.loads(answer.content)
    assert set(command) == {"CommandUUID", "Command"}
    return command


def test_idle_gets_the_next_command_and_each_answer_gets_the_one_after(devices: DeviceServer) -> None:
    identity = enroll(devices)
    first = queue(devices, "DeviceInformation", {"Queries": ["OSVersion", "DeviceName"]})
    second = queue(devices, "ProfileList")
    command = handed_out(connect(devices, identity, Status="Idle"))
    assert command["CommandUUID"] == first
    assert command["Command"] == {"RequestType": "DeviceInformation", "Queries": ["OSVersion", "DeviceName"]}
    answer = connect(
        devices,
        identity,
        Status="Acknowledged",
        CommandUUID=first,
        QueryResponses={"OSVersion": "18.1", "DeviceName": "Lobby iPad"},
    )
    assert handed_out(answer)["CommandUUID"] == second
    done = connect(devices, identity, Status="Acknowledged", CommandUUID=second, ProfileList=[])
    assert done.status_code == 200
    assert done.content == b""
    assert commands(devices) == {
        first: (CommandStatus.acknowledged, "Acknowledged", 1),
        second: (CommandStatus.acknowledged, "Acknowledged", 1),
    }
    with devices.session() as session:
        enrollment = session.get(Enrollment, UDID)
        assert enrollment is not None
        assert (enrollment.os_version, enrollment.device_name) == ("18.1", "Lobby iPad")


def test_an_error_and_a_format_error_are_stored_with_the_error_chain(devices: DeviceServer) -> None:
    identity = enroll(devices)
    refused = queue(devices, "RestartDevice")
    malformed = queue(devices, "ShutDownDevice")
    chain = [{"ErrorCode": 12021, "ErrorDomain": "MCMDMErrorDomain", "LocalizedDescription": "Not supervised"}]
    handed_out(connect(devices, identity, Status="Idle"))
    connect(devices, identity, Status="Error", CommandUUID=refused, ErrorChain=chain)
    assert connect(devices, identity, Status="CommandFormatError", CommandUUID=malformed).content == b""
    assert commands(devices) == {
        refused: (CommandStatus.error, "Error", 1),
        malformed: (CommandStatus.error, "CommandFormatError", 1),
    }
    with devices.session() as session:
        stored = session.scalar(select(Command).where(Command.command_uuid == refused))
        assert stored is not None
        assert stored.error_chain is not None
        assert stored.error_chain[0]["ErrorCode"] == 12021


def test_not_now_ends_the_session_and_the_command_comes_back_at_the_next_idle(devices: DeviceServer) -> None:
    identity = enroll(devices)
    busy = queue(devices, "InstalledApplicationList")
    waiting = queue(devices, "CertificateList")
    handed_out(connect(devices, identity, Status="Idle"))
    answer = connect(devices, identity, Status="NotNow", CommandUUID=busy)
    assert (answer.status_code, answer.content) == (200, b"")
    assert commands(devices)[busy] == (CommandStatus.not_now, "NotNow", 1)
    assert commands(devices)[waiting] == (CommandStatus.queued, None, 0)
    assert handed_out(connect(devices, identity, Status="Idle"))["CommandUUID"] == busy
    assert commands(devices)[busy][2] == 2


def test_a_command_whose_answer_was_lost_is_handed_out_again_under_its_uuid(devices: DeviceServer) -> None:
    identity = enroll(devices)
    lost = queue(devices, "SecurityInfo")
    handed_out(connect(devices, identity, Status="Idle"))
    # The response never reached the device: it says Idle again.
    assert handed_out(connect(devices, identity, Status="Idle"))["CommandUUID"] == lost
    assert commands(devices)[lost] == (CommandStatus.sent, None, 2)


def test_a_replayed_answer_changes_nothing(devices: DeviceServer) -> None:
    identity = enroll(devices)
    done = queue(devices, "SecurityInfo")
    handed_out(connect(devices, identity, Status="Idle"))
    assert connect(devices, identity, Status="Acknowledged", CommandUUID=done, SecurityInfo={}).status_code == 200
    before = commands(devices)
    again = connect(devices, identity, Status="Error", CommandUUID=done, ErrorChain=[])
    assert (again.status_code, again.content) == (200, b"")
    assert commands(devices) == before


def test_an_expired_command_is_not_handed_out(devices: DeviceServer) -> None:
    identity = enroll(devices)
    stale = queue(devices, "DeviceLocation", expires_in=timedelta(minutes=5))
    devices.clock.advance(minutes=6)
    answer = connect(devices, identity, Status="Idle")
    assert (answer.status_code, answer.content) == (200, b"")
    assert commands(devices)[stale][0] is CommandStatus.expired


def test_answers_for_commands_this_device_was_not_sent_are_refused_and_change_nothing(
    devices: DeviceServer,
) -> None:
    identity = enroll(devices)
    with devices.session() as session, session.begin():
        session.add(Enrollment(udid=OTHER_UDID, status=EnrollmentStatus.enrolled))
    foreign = queue(devices, "SecurityInfo", udid=OTHER_UDID)
    never_sent = queue(devices, "SecurityInfo")
    before = commands(devices)
    for uuid in ("not-a-command", foreign, never_sent.lower(), ""):
        answer = connect(devices, identity, Status="Acknowledged", CommandUUID=uuid)
        assert answer.status_code == 400, (uuid, answer.text)
        assert "Traceback" not in answer.text
    assert commands(devices) == before


def _deep(levels: int) -> bytes:
    return b"<plist><dict><key>Status</key><string>Idle</string><key>a</key>" + (
        b"<array>" * levels + b"</array>" * levels + b"</dict></plist>"
    )


HOSTILE_REPORTS = {
    "empty": b"",
    "not a plist": b"Status=Idle",
    "binary plist": plistlib.dumps({"Status": "Idle", "UDID": UDID}, fmt=plistlib.FMT_BINARY),
    "truncated": plistlib.dumps({"Status": "Idle", "UDID": UDID})[:-20],
    "an entity": (
        b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY e "Idle">]>'
        b"<plist><dict><key>Status</key><string>&e;</string><key>UDID</key><string>" + UDID.encode() + b"</string>"
        b"</dict></plist>"
    ),
    "an array": plistlib.dumps(["Idle"]),
    "no status": plistlib.dumps({"UDID": UDID}),
    "an unknown status": plistlib.dumps({"Status": "Done", "UDID": UDID}),
    "a status of the wrong type": plistlib.dumps({"Status": 1, "UDID": UDID}),
    "an answer without its uuid": plistlib.dumps({"Status": "Acknowledged", "UDID": UDID}),
    "another device's udid": plistlib.dumps({"Status": "Idle", "UDID": OTHER_UDID}),
    "nested too deep": _deep(200),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_REPORTS))
def test_hostile_reports_are_refused_and_change_nothing(devices: DeviceServer, case: str) -> None:
    identity = enroll(devices)
    waiting = queue(devices, "SecurityInfo")
    before = (commands(devices), devices.stored())
    body = HOSTILE_REPORTS[case]
    answer = devices.put("connect", body, signature=identity.sign(body))
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert "Traceback" not in answer.text
    assert (commands(devices), devices.stored()) == before
    assert commands(devices)[waiting] == (CommandStatus.queued, None, 0)


def test_a_report_larger_than_the_limit_is_refused_before_it_is_read(devices: DeviceServer) -> None:
    identity = enroll(devices)
    body = plistlib.dumps({"Status": "Idle", "UDID": UDID, "Pad": "x" * (9 * 1024 * 1024)})
    answer = devices.put("connect", body, signature=identity.sign(body))
    assert answer.status_code == 413
    assert "Traceback" not in answer.text


def test_a_report_signed_by_no_one_or_by_a_stranger_is_refused(devices: DeviceServer) -> None:
    identity = enroll(devices)
    queue(devices, "SecurityInfo")
    before = commands(devices)
    idle = plistlib.dumps({"Status": "Idle", "UDID": UDID})
    stranger = devices.identities.issue(udid=OTHER_UDID)
    for signature in (None, "bm90IGEgc2lnbmF0dXJl", stranger.sign(idle), identity.sign(idle + b" ")):
        answer = devices.put("connect", idle, signature=signature)
        assert answer.status_code == 400, answer.text
    assert commands(devices) == before
    body = capture("Authenticate.1.plist")
    assert devices.put("connect", body, signature=identity.sign(body)).status_code == 400


def test_a_device_that_has_not_finished_enrolling_is_refused_at_the_server_url_and_not_marked_seen(
    devices: DeviceServer,
) -> None:
    """Authenticated, no TokenUpdate yet: the ServerURL is not for it, and the refusal writes nothing."""
    identity = devices.identities.issue()
    body = capture("Authenticate.1.plist")
    assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 200
    with devices.session() as session:
        before = session.get(Enrollment, UDID)
        assert before is not None and before.status is EnrollmentStatus.enrolling
        seen = before.last_seen_at
    devices.clock.advance(seconds=60)
    answer = connect(devices, identity, Status="Idle")
    assert answer.status_code == 400 and "not enrolled" in answer.text
    with devices.session() as session:
        after = session.get(Enrollment, UDID)
        assert after is not None and after.last_seen_at == seen
