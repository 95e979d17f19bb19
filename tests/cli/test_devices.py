"""`pippin dep sync`, `pippin dep sync-history` and `pippin devices list | show` against the simulator.

Translation only (exit codes, tables, JSON keys, labels); SQLite alone keeps it quick. The seed's step 7:
after "Sync now" the devices appear in "All corporate-owned devices" as "Not contacted".
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from pippin.cli.main import app
from pippin.config import Settings
from pippin.dep.sync import start_sync
from pippin.store.db import SessionFactory, transaction
from tests.e2e.apple import add_devices, connect_token
from tests.simulator import RunningSimulator

DEVICE_KEYS = {
    "serial_number",
    "model",
    "description",
    "color",
    "asset_tag",
    "os",
    "device_family",
    "profile_status",
    "profile_uuid",
    "enrollment_state",
    "token",
    "first_seen_at",
    "last_synced_at",
    "device_assigned_date",
    "device_assigned_by",
    "last_op_type",
    "last_op_date",
    "profile_assign_time",
    "profile_push_time",
    "removed_at",
    "assignment_status",
    "assignment_retry_at",
    "assignment_error",
    "can_enroll",
    "cannot_enroll",
    "apple_status",
    "profile",
    "assigned_revision",
    "enrollment_status",
    "enrolled_at",
    "first_contact_at",
    "last_seen_at",
    "udid",
    "os_version",
    "build_version",
    "product_name",
    "primary_user_id",
    "primary_user",
    "has_dep_record",
    "unreachable",
    "unreachable_reason",
    "unreachable_since",
    # What DeviceInformation answers.
    "imei",
    "meid",
    "device_name",
    "model_name",
    "capacity_gb",
    "available_capacity_gb",
    "battery_level",
    "wifi_mac",
    "supervised",
    "activation_lock_enabled",
    "find_my_enabled",
    "lost_mode_enabled",
    "information_at",
    "awaiting_configuration",
    "setup_problem",
}


@pytest.fixture
def serials(session_factory: SessionFactory, online: Settings, sim: RunningSimulator) -> list[str]:
    server_uuid = connect_token(session_factory, online, sim)
    return add_devices(sim, server_uuid, 12)


@pytest.fixture
def pippin(online: Settings) -> Any:
    assert online.secret_key is not None
    env = {
        "PIPPIN_DATA_DIR": str(online.data_dir),
        "PIPPIN_DATABASE_URL": str(online.database_url),
        "PIPPIN_SECRET_KEY": online.secret_key.get_secret_value(),
        "PIPPIN_DEP_BASE_URL": online.dep_base_url,
        "PIPPIN_DEP_MAX_RETRIES": "1",
        "COLUMNS": "250",
    }
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return run


def test_sync_now_lists_the_assigned_devices_as_not_contacted(pippin: Any, serials: list[str]) -> None:
    synced = pippin("dep", "sync", "acme")
    assert synced.exit_code == 0, synced.output
    assert "12 added" in synced.output
    listed = pippin("devices", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("Not contacted") == 12
    assert all(serial in listed.output for serial in serials)


def test_devices_json_has_the_documented_keys_and_filters_apply(pippin: Any, serials: list[str]) -> None:
    assert pippin("dep", "sync", "acme").exit_code == 0
    listed = json.loads(pippin("devices", "list", "--json", "--limit", "5").stdout)
    assert len(listed) == 5 and set(listed[0]) == DEVICE_KEYS
    assert listed[0]["enrollment_state"] == "not_contacted" and listed[0]["token"] == "acme"
    assert json.loads(pippin("devices", "list", "--json", "--state", "removed").stdout) == []
    found = json.loads(pippin("devices", "list", "--json", "--search", serials[3]).stdout)
    assert [device["serial_number"] for device in found] == [serials[3]]
    shown = pippin("devices", "show", serials[3], "--json")
    assert json.loads(shown.stdout)["serial_number"] == serials[3]
    assert "Not contacted" in pippin("devices", "show", serials[3]).output


def test_devices_sort_both_ways_and_filter_what_cannot_enroll(pippin: Any, serials: list[str]) -> None:
    assert pippin("dep", "sync", "acme").exit_code == 0
    down = json.loads(pippin("devices", "list", "--json", "--sort", "serial", "--direction", "desc").stdout)
    assert [device["serial_number"] for device in down] == sorted(serials, reverse=True)
    paged = json.loads(pippin("devices", "list", "--json", "--sort", "last_synced", "--limit", "700").stdout)
    assert sorted(device["serial_number"] for device in paged) == sorted(serials)
    blocked = json.loads(pippin("devices", "list", "--json", "--cannot-enroll").stdout)
    assert len(blocked) == 12 and all(device["cannot_enroll"] for device in blocked)  # no profile at Apple yet
    assert json.loads(pippin("devices", "list", "--json", "--no-profile").stdout) == blocked
    assert json.loads(pippin("devices", "list", "--json", "--assignment", "none").stdout) == blocked
    assert json.loads(pippin("devices", "list", "--json", "--profile", "Staff").stdout) == []


def test_unknown_devices_and_bad_filters_exit_with_the_documented_codes(pippin: Any, serials: list[str]) -> None:
    missing = pippin("devices", "show", "NOPE")
    assert missing.exit_code == 3 and "NOPE" in missing.output
    assert pippin("devices", "list", "--state", "lost").exit_code == 2
    assert pippin("devices", "list", "--sort", "color").exit_code == 2
    assert pippin("devices", "list", "--direction", "up").exit_code == 2
    too_long = pippin("devices", "list", "--search", "x" * 129)
    assert too_long.exit_code == 2 and "longer than 128" in too_long.output and "Traceback" not in too_long.output
    assert pippin("devices", "list", "--limit", "0").exit_code == 2


def test_sync_history_and_tokens_show_the_syncs_health(pippin: Any, serials: list[str]) -> None:
    assert pippin("dep", "sync", "acme").exit_code == 0
    again = pippin("dep", "sync", "acme", "--full")
    assert again.exit_code == 0 and "0 added" in again.output  # within 7 days: only new serials are added
    history = json.loads(pippin("dep", "sync-history", "acme", "--json").stdout)
    assert [run["kind"] for run in history] == ["full", "full"]
    assert history[1]["added"] == 12 and history[0]["outcome"] == "succeeded"
    table = pippin("dep", "sync-history", "acme")
    assert table.exit_code == 0 and "succeeded" in table.output and "Full refresh allowed" in table.output
    tokens = json.loads(pippin("dep", "tokens", "--json").stdout)
    assert tokens[0]["sync"]["last_run"]["id"] == history[0]["id"]
    assert "succeeded" in pippin("dep", "tokens").output


def test_a_sync_while_the_window_is_closed_exits_4_and_says_when(
    pippin: Any, serials: list[str], session_factory: SessionFactory, online: Settings
) -> None:
    with transaction(session_factory) as session:
        start_sync(session, token_name="acme", settings=online)
    refused = pippin("dep", "sync", "acme")
    assert refused.exit_code == 4
    assert "already running" in refused.output and "UTC" in refused.output


def test_a_sync_of_an_unknown_token_exits_3(pippin: Any, serials: list[str]) -> None:
    assert pippin("dep", "sync", "nobody").exit_code == 3
    assert pippin("dep", "sync-history", "nobody").exit_code == 3
