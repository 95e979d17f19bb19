"""`pippin profiles` against the simulator: translation only (exit codes, output, JSON keys); SQLite alone."""

# Names in other scripts and with en dashes are what some of these tests are about.
# ruff: noqa: RUF001

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner, Result

from pippin.cli.main import app
from pippin.config import Settings
from pippin.store.db import SessionFactory
from tests.dep.test_profiles import certificate
from tests.e2e.apple import add_devices, connect_token
from tests.simulator import RunningSimulator

PROFILE_KEYS = {
    "name",
    "description",
    "revision",
    "user_affinity",
    "supervised",
    "locked",
    "mandatory",
    "allow_pairing",
    "await_device_configured",
    "auto_advance_setup",
    "department",
    "support_phone",
    "support_email",
    "org_magic",
    "language",
    "region",
    "anchor_certs",
    "skip_setup_items",
    "minimum_os_version",
    "setup_panes",
    "url",
    "configuration_web_url",
    "default_for_tokens",
    "definitions",
    "devices",
    "created_at",
    "updated_at",
}


@pytest.fixture
def server_uuid(session_factory: SessionFactory, online: Settings, sim: RunningSimulator) -> str:
    return connect_token(session_factory, online, sim)


@pytest.fixture
def pippin(online: Settings) -> Any:
    assert online.secret_key is not None
    env = {
        "PIPPIN_DATA_DIR": str(online.data_dir),
        "PIPPIN_DATABASE_URL": str(online.database_url),
        "PIPPIN_SECRET_KEY": online.secret_key.get_secret_value(),
        "PIPPIN_DEP_BASE_URL": online.dep_base_url,
        "PIPPIN_DEP_MAX_RETRIES": "1",
        "PIPPIN_SERVER_URL": "https://mdm.example.com",
        "COLUMNS": "250",
    }
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return run


def test_create_show_and_list_a_profile(pippin: Any, tmp_path: Path) -> None:
    cert_file = tmp_path / "ca.der"
    cert_file.write_bytes(certificate().public_bytes(Encoding.DER))
    created = pippin(
        "profiles", "create", "Staff", "--supervised", "--locked", "--user-affinity", "with_user",
        "--department", "IT", "--support-phone", "+46 8 1", "--language", "sv", "--region", "SE",
        "--skip", "Siri", "--skip", "passcode", "--anchor-cert", str(cert_file), "--json",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    profile = json.loads(created.stdout)
    assert set(profile) == PROFILE_KEYS
    assert profile["skip_setup_items"] == ["Passcode", "Siri"] and profile["locked"] is True
    assert profile["configuration_web_url"] == "https://mdm.example.com/enroll/web"
    shown = pippin("profiles", "show", "Staff")
    assert shown.exit_code == 0 and "Get started" in shown.output and "hidden" in shown.output
    assert "CN=Pippin Test CA" in shown.output
    listed = json.loads(pippin("profiles", "list", "--json").stdout)
    assert [item["name"] for item in listed] == ["Staff"]
    panes = json.loads(pippin("profiles", "panes", "--json").stdout)
    assert {"key": "Siri", "name": "Siri", "platforms": "iOS, iPadOS, macOS, tvOS", "note": None} in panes


def test_bad_input_exits_2_and_stores_nothing(pippin: Any, tmp_path: Path) -> None:
    locked = pippin("profiles", "create", "Staff", "--locked")
    assert locked.exit_code == 2 and "FLAGS_INVALID" in locked.output
    long_name = pippin("profiles", "create", "x" * 126)
    assert long_name.exit_code == 2 and "CONFIG_NAME_INVALID" in long_name.output
    pane = pippin("profiles", "create", "Staff", "--skip", "Sirii")
    assert pane.exit_code == 2 and "Did you mean Siri" in pane.output
    bad_cert = tmp_path / "bad.pem"
    bad_cert.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    cert = pippin("profiles", "create", "Staff", "--anchor-cert", str(bad_cert))
    assert cert.exit_code == 2 and "not an X.509 certificate" in cert.output
    assert pippin("profiles", "create", "Staff", "--anchor-cert", str(tmp_path / "missing")).exit_code == 2
    assert json.loads(pippin("profiles", "list", "--json").stdout) == []
    assert pippin("profiles", "show", "Nope").exit_code == 3
    assert pippin("profiles", "set-default", "acme").exit_code == 2


def test_assign_edit_and_default_reach_apple(pippin: Any, server_uuid: str, sim: RunningSimulator) -> None:
    serials = add_devices(sim, server_uuid, 6)
    assert pippin("profiles", "create", "Staff", "--skip", "Siri").exit_code == 0
    assert pippin("dep", "sync", "acme").exit_code == 0
    waiting = json.loads(pippin("devices", "list", "--no-profile", "--json").stdout)
    assert len(waiting) == 6 and {(d["can_enroll"], d["assignment_status"]) for d in waiting} == {(False, None)}
    assert "cannot enroll" in pippin("devices", "list", "--no-profile").output
    unknown = pippin("profiles", "assign", "Staff", "NOPE123")
    assert unknown.exit_code == 3 and "NOPE123" in unknown.output
    assigned = pippin("profiles", "assign", "Staff", *serials[:2])
    assert assigned.exit_code == 0, assigned.output
    assert "queued 2 devices" in assigned.output and "2 assigned" in assigned.output
    rest = json.loads(pippin("profiles", "assign", "Staff", "--all-unassigned", "--json").stdout)
    assert rest["queued"]["queued"] == 4 and rest["sent"]["assigned"] == 4
    assert json.loads(pippin("devices", "list", "--no-profile", "--json").stdout) == []
    device = json.loads(pippin("devices", "show", serials[0], "--json").stdout)
    assert (device["assignment_status"], device["can_enroll"]) == ("assigned", True)

    edited = pippin("profiles", "edit", "Staff", "--show", "Siri", "--skip", "Location", "--department", "Sales")
    assert edited.exit_code == 0, edited.output
    assert "revision 2" in edited.output and "6 assigned" in edited.output
    profile = json.loads(pippin("profiles", "show", "Staff", "--json").stdout)
    current = [d["profile_uuid"] for d in profile["definitions"] if d["current"]]
    stored = sim.portal.get(f"/portal/profiles/{current[0]}").json()
    assert stored["devices"] == sorted(serials)
    assert stored["profile"]["skip_setup_items"] == ["Location"] and stored["profile"]["department"] == "Sales"
    assert profile["devices"]["assigned"] == 6

    assert pippin("profiles", "set-default", "acme", "Staff").exit_code == 0
    later = add_devices(sim, server_uuid, 2, seed=2)
    assert pippin("dep", "sync", "acme").exit_code == 0
    stored = sim.portal.get(f"/portal/profiles/{current[0]}").json()
    assert stored["devices"] == sorted(serials + later)
    due = json.loads(pippin("profiles", "retry-due", "--json").stdout)
    assert due["sent"] == 0 and due["still_due"] == 0
    in_use = pippin("profiles", "delete", "Staff")
    assert in_use.exit_code == 4 and "still given to" in in_use.output


@pytest.mark.parametrize("name", ["Büro – iPads 東京", "Équipe – Paris", "iPads 📱 👩‍💻", "100% & more"])
def test_a_profile_named_in_any_script_works_in_every_command(pippin: Any, name: str) -> None:
    created = pippin("profiles", "create", name, "--json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["name"] == name
    assert json.loads(pippin("profiles", "show", name, "--json").stdout)["name"] == name
    edited = pippin("profiles", "edit", name, "--department", "Sales", "--queue-only")
    assert edited.exit_code == 0, edited.output
    assert pippin("profiles", "delete", name).exit_code == 0


@pytest.mark.parametrize(
    ("args", "rule"),
    [
        (("profiles", "create", "a/b"), "cannot contain '/'"),
        (("profiles", "create", "what?"), "cannot contain '?'"),
        (("profiles", "create", "#1"), "cannot contain '#'"),
        (("profiles", "create", ".."), "'.' or '..'"),
        (("profiles", "create", "--", "-rf"), "cannot start with '-'"),
        (("profiles", "create", "Sta\u202eff"), "U+202E"),
        (("profiles", "create", "Sta\u200bff"), "U+200B"),
        (("profiles", "create", "Staff", "--department", "Sa\x1bles"), "--department: contains U+001B"),
        (("profiles", "create", "Staff", "--support-phone", "1\u2028"), "--support-phone: contains U+2028"),
        (("profiles", "create", "Staff", "--description", "a\x01"), "--description: contains U+0001"),
        (("profiles", "show", "Sta\x1bff"), "The profile name contains U+001B"),
        (("profiles", "delete", "Sta\u2029ff"), "The profile name contains U+2029"),
    ],
)
def test_a_name_or_text_that_would_not_work_is_refused_with_the_rule(
    pippin: Any, args: tuple[str, ...], rule: str
) -> None:
    result = pippin(*args)
    assert result.exit_code == 2, result.output
    assert rule in result.stderr and "Traceback" not in result.output
    assert json.loads(pippin("profiles", "list", "--json").stdout) == []


def test_an_edit_with_a_control_character_changes_nothing(pippin: Any) -> None:
    assert pippin("profiles", "create", "Staff").exit_code == 0
    refused = pippin("profiles", "edit", "Staff", "--name", "Sta\x1bff")
    assert refused.exit_code == 2 and "NAME/--name: contains U+001B" in refused.stderr, refused.output
    assert json.loads(pippin("profiles", "show", "Staff", "--json").stdout)["revision"] == 1


def test_the_minimum_os_version_is_set_shown_and_cleared_without_a_new_revision(pippin: Any) -> None:
    created = pippin("profiles", "create", "Staff", "--minimum-os-version", "17.4", "--json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["minimum_os_version"] == "17.4"
    shown = pippin("profiles", "show", "Staff")
    assert shown.exit_code == 0 and "minimum OS version" in shown.output and "17.4" in shown.output
    edited = pippin("profiles", "edit", "Staff", "--minimum-os-version", "18.2")
    assert edited.exit_code == 0 and "Apple sees no change" in edited.output, edited.output
    cleared = pippin("profiles", "edit", "Staff", "--clear-minimum-os-version", "--json")
    assert cleared.exit_code == 0, cleared.output
    profile = json.loads(cleared.stdout)["profile"]
    assert (profile["minimum_os_version"], profile["revision"]) == (None, 1)
    assert "minimum OS version" in pippin("profiles", "show", "Staff").output
    both = pippin("profiles", "edit", "Staff", "--minimum-os-version", "17", "--clear-minimum-os-version")
    assert both.exit_code == 2 and "not both" in both.stderr
    assert "--minimum-os-version" in pippin("profiles", "edit", "--help").output


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("17.4.1.2", "minimum OS version"),
        ("17.x", "minimum OS version"),
        ("1234", "minimum OS version"),
        ("\u0661\u0667", "minimum OS version"),
        ("-1", "minimum OS version"),
        ("9" * 20_000, "--minimum-os-version"),
        ("17\x1b.4", "--minimum-os-version: contains U+001B"),
        ("17.4\u2028", "--minimum-os-version: contains U+2028"),
    ],
)
def test_a_bad_minimum_os_version_exits_2_and_changes_nothing(pippin: Any, value: str, rule: str) -> None:
    created = pippin("profiles", "create", "Staff", "--minimum-os-version", value)
    assert created.exit_code == 2 and rule in created.stderr and "Traceback" not in created.output, created.output
    assert json.loads(pippin("profiles", "list", "--json").stdout) == []
    assert pippin("profiles", "create", "Staff", "--minimum-os-version", "17").exit_code == 0
    edited = pippin("profiles", "edit", "Staff", "--minimum-os-version", value)
    assert edited.exit_code == 2 and rule in edited.stderr, edited.output
    assert json.loads(pippin("profiles", "show", "Staff", "--json").stdout)["minimum_os_version"] == "17"
