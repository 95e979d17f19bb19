"""`pippin devices list --unreachable`: translation only (the filter, the JSON keys, the table's reason, hostile
flags); on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from pippin.store.db import SessionFactory, transaction
from tests.cli.conftest import Pippin
from tests.inventory.test_unreachable import TOKEN, _push_row
from tests.mdm.command_fleet import enrolled_device


@pytest.fixture
def fleet(session_factory: SessionFactory) -> None:
    with transaction(session_factory) as session:
        _push_row(session, enrolled_device(session, "D1"), refused=TOKEN, reason="BadDeviceToken")
        _push_row(session, enrolled_device(session, "D2"), refused=None)
        _push_row(session, enrolled_device(session, "M1", dep=False), refused=TOKEN, reason="Unregistered")


def test_unreachable_lists_the_refused_token_devices_with_the_reason(pippin: Pippin, fleet: None) -> None:
    listed = pippin("devices", "list", "--unreachable", "--json")
    assert listed.exit_code == 0, listed.output
    assert [(d["serial_number"], d["unreachable"], d["unreachable_reason"]) for d in json.loads(listed.stdout)] == [
        ("D1", True, "BadDeviceToken"), ("M1", True, "Unregistered"),
    ]  # fmt: skip
    table = pippin("devices", "list", "--unreachable")
    assert table.exit_code == 0 and "D2" not in table.stdout
    assert "refused:" in table.stdout and "Unregistered" in table.stdout
    everything = json.loads(pippin("devices", "list", "--json").stdout)
    assert [d["unreachable"] for d in everything] == [True, False, True]


@pytest.mark.parametrize("args", [("--unreachable=yes",), ("--unreachable", "maybe"), ("--reachable",)])
def test_hostile_unreachable_flags_are_refused_clearly(pippin: Pippin, fleet: None, args: tuple[str, ...]) -> None:
    result = pippin("devices", "list", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
