"""`pippin devices command | commands` and `pippin commands send | cancel | approve | approvals`: translation only
(exit codes, confirmation, JSON keys, hostile flags and files), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import AuditEvent, Command, CommandApproval, EnrollmentStatus
from tests.cli.conftest import Pippin
from tests.mdm.command_fleet import acme_token, enrolled_device


@pytest.fixture
def fleet(session_factory: SessionFactory) -> None:
    with transaction(session_factory) as session:
        token = acme_token(session)
        for serial in ("C01", "C02"):
            enrolled_device(session, serial, token=token)
        enrolled_device(session, "OUT1", token=token, status=EnrollmentStatus.unenrolled)


def _commands(session_factory: SessionFactory) -> int:
    with read_transaction(session_factory) as session:
        return int(session.scalar(select(func.count()).select_from(Command)) or 0)


def test_a_command_is_sent_listed_and_canceled(pippin: Pippin, fleet: None, session_factory: SessionFactory) -> None:
    sent = pippin("devices", "command", "C01", "Settings", "--param", "DeviceName=Kiosk 1", "--json")
    assert sent.exit_code == 2, sent.output  # Settings takes Items, not DeviceName: refused by the catalog
    sent = pippin("devices", "command", "C01", "InstalledApplicationList", "--param", "ManagedAppsOnly:=true", "--json")
    assert sent.exit_code == 0, sent.output
    queued = json.loads(sent.stdout)
    assert queued["status"] == "queued" and queued["serial_number"] == "C01"
    listed = pippin("devices", "commands", "C01", "--json")
    assert [c["command_uuid"] for c in json.loads(listed.stdout)] == [queued["command_uuid"]]
    table = pippin("devices", "commands", "C01")
    assert table.exit_code == 0 and "InstalledApplicationList" in table.stdout
    canceled = pippin("commands", "cancel", "C01", queued["command_uuid"])
    assert canceled.exit_code == 0 and "Canceled" in canceled.stdout
    assert pippin("commands", "cancel", "C01", queued["command_uuid"]).exit_code == 4


def test_a_destructive_command_asks_for_the_serial_or_yes(
    pippin: Pippin, fleet: None, session_factory: SessionFactory
) -> None:
    refused = pippin("devices", "command", "C01", "EraseDevice", input="C02\n")
    assert refused.exit_code == 2 and "Not confirmed" in refused.output and _commands(session_factory) == 0
    confirmed = pippin("devices", "command", "C01", "DeviceLock", "--param", "Message=Call IT", input="C01\n")
    assert confirmed.exit_code == 0, confirmed.output
    forced = pippin("devices", "command", "C01", "EraseDevice", "--yes")
    assert forced.exit_code == 0 and _commands(session_factory) == 2
    with read_transaction(session_factory) as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        assert [(e.action, e.interface, e.detail["destructive"]) for e in events] == [
            ("command.send", "cli", True),
            ("command.send", "cli", True),
        ]


def test_install_profile_takes_a_file(pippin: Pippin, fleet: None, tmp_path: Path) -> None:
    missing = pippin("devices", "command", "C01", "InstallProfile", "--profile", str(tmp_path / "nope.mobileconfig"))
    assert missing.exit_code == 2 and "Cannot read" in missing.output
    garbage = tmp_path / "garbage.mobileconfig"
    garbage.write_bytes(b"\x00\xff not a profile")
    refused = pippin("devices", "command", "C01", "InstallProfile", "--profile", str(garbage))
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    huge = tmp_path / "huge.mobileconfig"
    huge.write_bytes(b"x" * (1024 * 1024 + 1))
    assert "larger" in pippin("devices", "command", "C01", "InstallProfile", "--profile", str(huge)).output


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["devices", "command", "NOPE", "DeviceInformation"], 3),
        (["devices", "command", "OUT1", "DeviceInformation"], 4),
        (["devices", "command", "C01", "MakeCoffee"], 2),
        (["devices", "command", "C01", "DeviceLock", "--param", "Message"], 2),
        (["devices", "command", "C01", "DeviceLock", "--param", "Message:={"], 2),
        (["devices", "command", "C01", "DeviceLock", "--param", "Message:=42"], 2),
        (["devices", "command", "C01", "DeviceLock", "--param", "Message=a", "--param", "Message=b"], 2),
        (["devices", "command", "C\x1b01", "DeviceInformation"], 2),
        (["devices", "commands", "NOPE"], 3),
        (["commands", "send", "DeviceInformation"], 2),
        (["commands", "send", "DeviceInformation", "--serial", "C01", "--state", "enrolled"], 2),
        (["commands", "send", "DeviceInformation", "--serial", "C01", "--serial", "NOPE"], 3),
        (["commands", "send", "DeviceInformation", "--serial", "C01", "--resume", "yesterday"], 2),
        (["commands", "send", "DeviceInformation", "--serial", "C01", "--expires-in", "soon"], 2),
        (["devices", "command", "C01", "DeviceInformation", "--expires-in", "P2Y"], 2),
        (["devices", "command", "C01", "DeviceInformation", "--expires-in", "0"], 2),
        (["commands", "approve", "0"], 2),
        (["commands", "approve", "77"], 3),
    ],
)
def test_bad_input_gets_an_exit_code_and_changes_nothing(
    pippin: Pippin, fleet: None, session_factory: SessionFactory, args: list[str], code: int
) -> None:
    result = pippin(*args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and _commands(session_factory) == 0


def test_a_payload_file_must_be_a_json_object(pippin: Pippin, fleet: None, tmp_path: Path) -> None:
    for content in (b"[1]", b"{", b"\xff", b"[" * 100_000):
        path = tmp_path / "payload.json"
        path.write_bytes(content)
        result = pippin("devices", "command", "C01", "DeviceLock", "--payload-file", str(path), "--yes")
        assert result.exit_code == 2 and "Traceback" not in result.output, content[:10]
    path.write_text(json.dumps({"Message": "Call IT"}))
    assert pippin("devices", "command", "C01", "DeviceLock", "--payload-file", str(path), "--yes").exit_code == 0


def test_bulk_send_by_filter_and_a_bulk_erase_approved_by_another_admin(
    pippin: Pippin, fleet: None, session_factory: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = pippin("commands", "send", "DeviceInformation", "--token", "acme", "--json")
    assert sent.exit_code == 0, sent.output
    assert (json.loads(sent.stdout)["devices"], json.loads(sent.stdout)["not_enrolled"]) == (2, 1)
    resumed = pippin(
        "commands", "send", "DeviceInformation", "--token", "acme", "--resume", json.loads(sent.stdout)["bulk_id"]
    )
    assert resumed.exit_code == 0, resumed.output
    assert "for 0 devices; 2 had it from the earlier run" in resumed.stdout
    not_confirmed = pippin("commands", "send", "EraseDevice", "--state", "enrolled", input="no\n")
    assert not_confirmed.exit_code == 2
    asked = pippin("commands", "send", "EraseDevice", "--serial", "C01", "--serial", "C02", "--yes", "--json")
    assert asked.exit_code == 0, asked.output
    approval = json.loads(asked.stdout)["approval"]
    assert approval["status"] == "pending" and _commands(session_factory) == 2
    own = pippin("commands", "approve", str(approval["id"]), "--yes")
    assert own.exit_code == 4 and "your own" in own.output
    with transaction(session_factory) as session:  # as if another OS user had asked for it
        stored = session.get(CommandApproval, approval["id"])
        assert stored is not None
        stored.requested_by = "someone-else"
    wrong_count = pippin("commands", "approve", str(approval["id"]), input="3\n")
    assert wrong_count.exit_code == 2 and _commands(session_factory) == 2
    approved = pippin("commands", "approve", str(approval["id"]), input="2\n")
    assert approved.exit_code == 0, approved.output
    assert _commands(session_factory) == 4
    listed = json.loads(pippin("commands", "approvals", "--json").stdout)
    assert [(a["id"], a["status"], a["queued"]) for a in listed] == [(approval["id"], "queued", 2)]
    assert "EraseDevice" in pippin("commands", "approvals").stdout
