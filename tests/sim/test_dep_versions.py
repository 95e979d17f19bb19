"""``X-Server-Protocol-Version`` gating, version by version, as the reference's table says (section 2.3)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sim.apple import (
    DEPTestClient,
    ServerCredentials,
    seed_devices,
)
from tests.simulator import RunningSimulator

V10_EXTRA = {"eid": "8904" + "0" * 28, "wifi_mac_address": "AA:BB:CC:DD:EE:FF", "imei": ["356938035643809"]}


def _ipad(apple: RunningSimulator, server: ServerCredentials, version: int | None) -> dict[str, Any]:
    serial = seed_devices(apple.state, server.server_id, 1, family="iPad", extra=V10_EXTRA)[0]
    with DEPTestClient(apple.base_url, server, version=version) as dep:
        page = dep.ok("POST", "/server/devices", json={})
        details = dep.ok("POST", "/devices", json={"devices": [serial]})["devices"][serial]
    device: dict[str, Any] = next(d for d in page["devices"] if d["serial_number"] == serial)
    assert {k: v for k, v in details.items() if k != "response_status"} == device
    return device


@pytest.mark.parametrize(
    ("version", "os", "has_v10"),
    [
        (None, None, False),
        (1, None, False),
        (2, "iOS", False),
        (7, "iPadOS", False),
        (9, "iPadOS", False),
        (10, "iPadOS", True),
    ],
)
def test_device_fields_by_version(
    apple: RunningSimulator, server: ServerCredentials, version: int | None, os: str | None, has_v10: bool
) -> None:
    device = _ipad(apple, server, version)
    assert device.get("os") == os
    assert ("device_family" in device) == (os is not None)
    assert ("eid" in device) == has_v10 and ("imei" in device) == has_v10


def test_sync_records_are_gated_too(apple: RunningSimulator, server: ServerCredentials) -> None:
    with DEPTestClient(apple.base_url, server, version=3) as dep:
        cursor = dep.ok("POST", "/server/devices", json={})["cursor"]
        seed_devices(apple.state, server.server_id, 1, family="iPad", extra=V10_EXTRA)
        device = dep.ok("POST", "/devices/sync", json={"cursor": cursor})["devices"][0]
    assert device["os"] == "iOS" and "eid" not in device and device["op_type"] == "added"


@pytest.mark.parametrize(("version", "has_org_ids"), [(1, False), (2, False), (3, True), (10, True)])
def test_account_fields_by_version(
    apple: RunningSimulator, server: ServerCredentials, version: int, has_org_ids: bool
) -> None:
    with DEPTestClient(apple.base_url, server, version=version) as dep:
        account = dep.ok("GET", "/account")
    assert account["server_uuid"] == server.server_uuid
    assert account["admin_id"] == account["facilitator_id"] == "admin@example.com"
    assert {"server_name", "org_name", "org_email", "org_phone", "org_address"} <= account.keys()
    for key in ("org_id", "org_id_hash", "org_type", "org_version", "urls"):
        assert (key in account) == has_org_ids
    if has_org_ids:
        limits = {entry["uri"]: entry.get("limit") for entry in account["urls"]}
        assert limits["/server/devices"] == limits["/devices/sync"] == {"default": 100, "maximum": 1000}
        methods = {entry["uri"]: entry["http_method"] for entry in account["urls"]}
        assert methods["/profile/devices"] == ["DELETE", "POST", "PUT"]


@pytest.mark.parametrize(
    ("version", "expected", "has_retry_after"), [(3, "FAILED", False), (9, "THROTTLED", False), (10, "THROTTLED", True)]
)
def test_throttled_assignments_by_version(
    apple: RunningSimulator, server: ServerCredentials, version: int, expected: str, has_retry_after: bool
) -> None:
    serial = seed_devices(apple.state, server.server_id, 1)[0]
    apple.portal.put("/portal/faults", json={"rates": {"post_profile_devices": {"throttled": 1}}})
    with DEPTestClient(apple.base_url, server, version=version) as dep:
        profile = dep.ok("POST", "/profile", json={"profile_name": "P", "url": "https://mdm.example.com/e"})
        answer = dep.ok("POST", "/profile/devices", json={"profile_uuid": profile["profile_uuid"], "devices": [serial]})
    assert answer["devices"] == {serial: expected}
    assert ("retry_after_seconds" in answer) == has_retry_after
    if has_retry_after:
        assert answer["retry_after_seconds"] == 60


def test_profile_fields_by_version(apple: RunningSimulator, server: ServerCredentials) -> None:
    body = {"profile_name": "P", "url": "https://mdm.example.com/e", "await_device_configured": True}
    with DEPTestClient(apple.base_url, server, version=1) as old:
        uuid = old.ok("POST", "/profile", json=body)["profile_uuid"]
        assert "await_device_configured" not in old.ok("GET", f"/profile?profile_uuid={uuid}")
    with DEPTestClient(apple.base_url, server, version=2) as new:
        assert new.ok("GET", f"/profile?profile_uuid={uuid}")["await_device_configured"] is True
