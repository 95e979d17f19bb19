"""``GET /api/v1/devices?unreachable=true``: translation only (the filter, the keys, hostile values refused); the
service is tested in ``tests/inventory/test_unreachable.py``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pippin.server.resources import ServerResources
from pippin.store.db import read_transaction, transaction
from pippin.store.models import PushDelivery
from tests.inventory.test_unreachable import TOKEN, _push_row
from tests.mdm.command_fleet import enrolled_device


@pytest.fixture
def fleet(resources: ServerResources) -> None:
    with transaction(resources.session_factory) as session:
        _push_row(session, enrolled_device(session, "D1"), refused=TOKEN, reason="BadDeviceToken")
        _push_row(session, enrolled_device(session, "D2"), refused="cd" * 32, reason="BadDeviceToken")
        enrolled_device(session, "M1", dep=False)


def test_unreachable_true_lists_only_the_refused_token_devices_with_the_reason(
    client: TestClient, auth: dict[str, str], fleet: None
) -> None:
    listed = client.get("/api/v1/devices", params={"unreachable": "true"}, headers=auth)
    assert listed.status_code == 200, listed.text
    [device] = listed.json()["devices"]
    assert (device["serial_number"], device["unreachable"], device["unreachable_reason"]) == (
        "D1", True, "BadDeviceToken",
    )  # fmt: skip
    assert device["unreachable_since"] is not None
    everything = client.get("/api/v1/devices", params={"unreachable": "false"}, headers=auth).json()["devices"]
    assert [(d["serial_number"], d["unreachable"]) for d in everything] == [("D1", True), ("D2", False), ("M1", False)]
    shown = client.get("/api/v1/devices/D2", headers=auth).json()
    assert (shown["unreachable"], shown["unreachable_reason"], shown["unreachable_since"]) == (False, None, None)


@pytest.mark.parametrize("value", ["maybe", "", "2", "true\x00", "tru e", "1" * 5000, "[true]"])
def test_a_hostile_unreachable_value_is_refused_clearly(
    client: TestClient, auth: dict[str, str], fleet: None, resources: ServerResources, value: str
) -> None:
    answer = client.get("/api/v1/devices", params={"unreachable": value}, headers=auth)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid_request" and body["details"][0]["location"] == "query.unreachable"
    assert "valid boolean" in body["message"] and (not value or value not in answer.text)  # never echoed
    with read_transaction(resources.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(PushDelivery)) == 2
