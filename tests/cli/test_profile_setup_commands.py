"""`pippin profiles setup-commands` and the setup problem in `pippin devices`: translation only (exit codes, output,
JSON keys), hostile input refused with nothing changed. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pippin.store.db import SessionFactory, transaction
from pippin.store.models import (
    AuditEvent,
    DEPProfile,
    SetupCommand,
    utcnow,
)
from tests.cli.conftest import Pippin
from tests.mdm.command_samples import mdm_profile, profile
from tests.mdm.enrollment_setup import stuck_in_setup_assistant

KEYS = {"id", "position", "kind", "request_type", "label", "name_template", "created_at", "created_by"}


@pytest.fixture
def staff(session_factory: SessionFactory) -> str:
    with transaction(session_factory) as session:
        session.add(DEPProfile(name="Staff", is_supervised=True, await_device_configured=True))
    return "Staff"


def stored(session_factory: SessionFactory) -> tuple[int, int]:
    """How many setup commands and audit events the database holds."""
    with transaction(session_factory) as session:
        return (
            session.scalar(select(func.count()).select_from(SetupCommand)) or 0,
            session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        )


def test_add_list_and_remove_setup_commands(pippin: Pippin, staff: str, tmp_path: Path) -> None:
    wifi = tmp_path / "wifi.mobileconfig"
    wifi.write_bytes(profile())
    added = pippin("profiles", "setup-commands", "add", staff, "--install", str(wifi))
    assert added.exit_code == 0 and "added InstallProfile 'Wi-Fi' as command 1" in added.output
    named = pippin("profiles", "setup-commands", "add", staff, "--device-name", "iPad-{serial}", "--json")
    assert named.exit_code == 0, named.output
    shown = json.loads(named.stdout)
    assert set(shown) == KEYS and (shown["position"], shown["request_type"]) == (2, "Settings")
    listed = json.loads(pippin("profiles", "setup-commands", "list", staff, "--json").stdout)
    assert [item["label"] for item in listed] == ["Wi-Fi", "iPad-{serial}"]
    assert "correct horse" not in json.dumps(listed)  # the profile's Wi-Fi password is never shown
    table = pippin("profiles", "setup-commands", "list", staff)
    assert table.exit_code == 0 and "InstallProfile" in table.output and "iPad-{serial}" in table.output
    removed = pippin("profiles", "setup-commands", "remove", staff, str(listed[0]["id"]))
    assert removed.exit_code == 0
    left = json.loads(pippin("profiles", "setup-commands", "list", staff, "--json").stdout)
    assert [(item["position"], item["label"]) for item in left] == [(1, "iPad-{serial}")]
    empty = pippin("profiles", "setup-commands", "remove", staff, str(left[0]["id"]))
    assert empty.exit_code == 0
    assert "get DeviceConfigured at once" in pippin("profiles", "setup-commands", "list", staff).output


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ("iPad-{serial_number}", "{serial_number}, which is not a placeholder"),
        ("{serial.__class__}", "not a placeholder Pippin fills in"),
        ("{serial!r}", "not a placeholder Pippin fills in"),
        ("{serial:>300}", "not a placeholder Pippin fills in"),
        ("{0}", "not a placeholder Pippin fills in"),
        ("iPad-{serial", "unmatched { or }"),
        ("iPad}", "unmatched { or }"),
        ("iPad-\x1b[31m{serial}", "The device name template"),
        ("iPad-\u202e{serial}", "The device name template"),
        ("x" * 201, "1 to 200 characters"),
        ("   ", "1 to 200 characters"),
    ],
)
def test_a_bad_template_is_refused_clearly_and_changes_nothing(
    pippin: Pippin, staff: str, session_factory: SessionFactory, template: str, said: str
) -> None:
    before = stored(session_factory)
    refused = pippin("profiles", "setup-commands", "add", staff, "--device-name", template)
    assert refused.exit_code == 2 and said in " ".join(refused.output.split()), refused.output
    assert "Traceback" not in refused.output and "\x1b[31m" not in refused.output
    assert stored(session_factory) == before


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"not a profile", "is not a profile Pippin sends"),
        (b"", "it is empty"),
        (b"bplist00" + b"\0" * 20, "binary plist"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><plist><dict/></plist>', "entities"),
        (mdm_profile(), "MDM payload"),
        (b"<" + b"a" * (1024 * 1024 + 1), "larger than"),
    ],
)
def test_a_file_that_is_not_a_profile_is_refused_and_changes_nothing(
    pippin: Pippin, staff: str, session_factory: SessionFactory, tmp_path: Path, content: bytes, said: str
) -> None:
    path = tmp_path / "bad.mobileconfig"
    path.write_bytes(content)
    before = stored(session_factory)
    refused = pippin("profiles", "setup-commands", "add", staff, "--install", str(path))
    assert refused.exit_code == 2 and said in " ".join(refused.output.split()), refused.output
    assert stored(session_factory) == before


def test_wrong_invocations_exit_clearly(
    pippin: Pippin, staff: str, tmp_path: Path, session_factory: SessionFactory
) -> None:
    before = stored(session_factory)
    neither = pippin("profiles", "setup-commands", "add", staff)
    assert neither.exit_code == 2 and "--install FILE or --device-name" in neither.output
    wifi = tmp_path / "wifi.mobileconfig"
    wifi.write_bytes(profile())
    both = pippin("profiles", "setup-commands", "add", staff, "--install", str(wifi), "--device-name", "{serial}")
    assert both.exit_code == 2
    missing = pippin("profiles", "setup-commands", "add", staff, "--install", str(tmp_path / "none"))
    assert missing.exit_code == 2 and "Cannot read" in missing.output
    nobody = pippin("profiles", "setup-commands", "add", "Nobody", "--device-name", "{serial}")
    assert nobody.exit_code == 3 and "No enrollment profile" in nobody.output
    assert pippin("profiles", "setup-commands", "remove", staff, "99").exit_code == 3
    assert pippin("profiles", "setup-commands", "remove", staff, "0").exit_code == 2
    assert pippin("profiles", "setup-commands", "list", "bad\x00name").exit_code in (2, 3)
    assert stored(session_factory) == before


def test_devices_list_and_show_name_the_step_a_stuck_device_waits_on(
    pippin: Pippin, staff: str, session_factory: SessionFactory
) -> None:
    started = utcnow() - timedelta(hours=2)  # far past the 30 minutes PIPPIN_SETUP_STUCK_AFTER gives by default
    with transaction(session_factory) as session:
        stuck_in_setup_assistant(session, started=started, steps=[], configured_uuid="C-1")
    listed = pippin("devices", "list")
    assert listed.exit_code == 0 and "stuck" in listed.output
    assert "DeviceConfigured is no longer in the queue" in " ".join(listed.output.split())
    (device_json,) = json.loads(pippin("devices", "list", "--json").stdout)
    assert device_json["awaiting_configuration"] is True and device_json["setup_problem"]["kind"] == "stuck"
    shown = json.loads(pippin("devices", "show", "F5JM992LF193", "--json").stdout)
    assert shown["setup_problem"] == device_json["setup_problem"]
    table = pippin("devices", "show", "F5JM992LF193")
    assert table.exit_code == 0 and "stuck: Still in Setup Assistant" in " ".join(table.output.split())
