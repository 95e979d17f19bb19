"""Profiles: Apple's validation codes, define/get, assign (POST and PUT), remove, cooldowns (3.5-3.8, 8)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from pippin.sim.models import SimDevice, SimDeviceEvent, SimProfile
from tests.sim.apple import (
    DEPTestClient,
    ServerCredentials,
    create_test_server,
    seed_devices,
)
from tests.simulator import RunningSimulator

VALID = {"profile_name": "Corporate", "url": "https://mdm.example.com/enroll"}


def _counts(apple: RunningSimulator) -> tuple[int, int]:
    with apple.state.transaction() as session:
        profiles = session.scalar(select(func.count()).select_from(SimProfile)) or 0
        events = session.scalar(select(func.count()).select_from(SimDeviceEvent)) or 0
    return profiles, events


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"profile_name": None}, "CONFIG_NAME_REQUIRED"),
        ({"profile_name": ""}, "CONFIG_NAME_INVALID"),
        ({"profile_name": "x" * 126}, "CONFIG_NAME_INVALID"),
        ({"url": None}, "CONFIG_URL_REQUIRED"),
        ({"url": ""}, "CONFIG_URL_INVALID"),
        ({"url": "not a url"}, "CONFIG_URL_INVALID"),
        ({"url": "ftp://mdm.example.com/"}, "CONFIG_URL_INVALID"),
        ({"url": "https://mdm.example.com/" + "a" * 2000}, "CONFIG_URL_INVALID"),
        ({"url": "https://mdm.example.com:99999/"}, "CONFIG_URL_INVALID"),
        ({"configuration_web_url": "javascript:alert(1)"}, "CONFIG_URL_INVALID"),
        ({"is_mdm_removable": False}, "FLAGS_INVALID"),
        ({"department": "d" * 126}, "DEPARTMENT_INVALID"),
        ({"org_magic": "m" * 257}, "MAGIC_INVALID"),
        ({"support_email_address": "e" * 251}, "SUPPORT_EMAIL_INVALID"),
        ({"support_phone_number": "1" * 51}, "SUPPORT_PHONE_INVALID"),
        ({"language": "english"}, "LOCALE_INVALID"),
        ({"region": "se"}, "LOCALE_INVALID"),
        ({"is_supervised": "yes"}, "MALFORMED_REQUEST_BODY"),
        ({"skip_setup_items": "Siri"}, "MALFORMED_REQUEST_BODY"),
        ({"skip_setup_items": [1]}, "MALFORMED_REQUEST_BODY"),
        ({"profile_name": 5}, "MALFORMED_REQUEST_BODY"),
        ({"devices": "SERIAL"}, "MALFORMED_REQUEST_BODY"),
        ({"devices": ["S"] * 1001}, "MALFORMED_REQUEST_BODY"),
    ],
)
def test_define_validation_errors_change_nothing(
    apple: RunningSimulator, client: DEPTestClient, changes: dict[str, Any], code: str
) -> None:
    body = {**VALID, **changes}
    body = {key: value for key, value in body.items() if value is not None}
    before = _counts(apple)
    response = client.call("POST", "/profile", json=body)
    assert (response.status_code, response.text) == (400, code)
    assert _counts(apple) == before


def test_define_then_get_echoes_the_profile_and_unknown_skip_keys(client: DEPTestClient) -> None:
    body = {
        **VALID,
        "is_supervised": True,
        "is_mdm_removable": False,
        "skip_setup_items": ["Siri", "SomeFuturePane"],
        "language": "sv",
        "region": "SE",
        "devices": [],
    }
    first = client.ok("POST", "/profile", json=body)
    second = client.ok("POST", "/profile", json=body)
    assert re.fullmatch(r"[0-9A-F]{32}", first["profile_uuid"]) and first["profile_uuid"] != second["profile_uuid"]
    assert first["devices"] == {}
    stored = client.ok("GET", f"/profile?profile_uuid={first['profile_uuid']}")
    expected = {key: value for key, value in body.items() if key != "devices"}
    assert stored == {**expected, "profile_uuid": first["profile_uuid"]}
    assert client.call("GET", "/profile").text == "PROFILE_UUID_REQUIRED"
    assert client.call("GET", "/profile?profile_uuid=" + "0" * 32).text == "PROFILE_NOT_FOUND"


def test_another_servers_profile_is_not_found(apple: RunningSimulator, client: DEPTestClient) -> None:
    uuid = client.ok("POST", "/profile", json=VALID)["profile_uuid"]
    with DEPTestClient(apple.base_url, create_test_server(apple.state)) as stranger:
        assert stranger.call("GET", f"/profile?profile_uuid={uuid}").text == "PROFILE_NOT_FOUND"
        response = stranger.call("PUT", "/profile/devices", json={"profile_uuid": uuid, "devices": ["X"]})
        assert response.text == "PROFILE_NOT_FOUND"


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_assign_updates_devices_and_reports_per_serial(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient, method: str
) -> None:
    serials = seed_devices(apple.state, server.server_id, 2)
    uuid = client.ok("POST", "/profile", json=VALID)["profile_uuid"]
    answer = client.ok(method, "/profile/devices", json={"profile_uuid": uuid, "devices": [*serials, "ELSEWHERE"]})
    assert answer == {
        "profile_uuid": uuid,
        "devices": {serials[0]: "SUCCESS", serials[1]: "SUCCESS", "ELSEWHERE": "NOT_ACCESSIBLE"},
    }
    device = client.ok("POST", "/devices", json={"devices": serials[:1]})["devices"][serials[0]]
    assert device["profile_uuid"] == uuid and device["profile_status"] == "assigned" and device["profile_assign_time"]


def test_define_can_assign_at_once(apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient) -> None:
    serial = seed_devices(apple.state, server.server_id, 1)[0]
    answer = client.ok("POST", "/profile", json={**VALID, "devices": [serial, "UNKNOWN"]})
    assert answer["devices"] == {serial: "SUCCESS", "UNKNOWN": "NOT_ACCESSIBLE"}


def test_assign_request_errors(client: DEPTestClient) -> None:
    uuid = client.ok("POST", "/profile", json=VALID)["profile_uuid"]
    cases = [
        ({"devices": ["A"]}, "PROFILE_UUID_REQUIRED"),
        ({"profile_uuid": uuid}, "DEVICE_ID_REQUIRED"),
        ({"profile_uuid": uuid, "devices": []}, "DEVICE_ID_REQUIRED"),
        ({"profile_uuid": "F" * 32, "devices": ["A"]}, "PROFILE_NOT_FOUND"),
        ({"profile_uuid": uuid, "devices": [f"S{i}" for i in range(1001)]}, "MALFORMED_REQUEST_BODY"),
        ({"profile_uuid": 7, "devices": ["A"]}, "MALFORMED_REQUEST_BODY"),
        ({"profile_uuid": uuid, "devices": [None]}, "MALFORMED_REQUEST_BODY"),
    ]
    for body, code in cases:
        response = client.call("POST", "/profile/devices", json=body)
        assert (response.status_code, response.text) == (400, code), body


def test_a_failed_device_cools_down_for_24_hours(sim: RunningSimulator) -> None:
    from tests.sim.apple import create_test_server as make

    credentials = make(sim.state)
    serial = seed_devices(sim.state, credentials.server_id, 1)[0]
    sim.portal.put("/portal/faults", json={"put_profile_devices_responses": [{"count": 1, "response": "failed"}]})
    with DEPTestClient(sim.base_url, credentials) as dep:
        uuid = dep.ok("POST", "/profile", json=VALID)["profile_uuid"]
        body = {"profile_uuid": uuid, "devices": [serial]}
        assert dep.ok("PUT", "/profile/devices", json=body)["devices"] == {serial: "FAILED"}
        assert dep.ok("PUT", "/profile/devices", json=body)["devices"] == {serial: "FAILED"}
        sim.portal.post("/portal/clock", json={"advance_seconds": 23 * 3600})
        assert dep.open_session().status_code == 200
        assert dep.ok("PUT", "/profile/devices", json=body)["devices"] == {serial: "FAILED"}
        sim.portal.post("/portal/clock", json={"advance_seconds": 3600})
        assert dep.open_session().status_code == 200
        assert dep.ok("PUT", "/profile/devices", json=body)["devices"] == {serial: "SUCCESS"}
    with sim.state.transaction() as session:
        device = session.get(SimDevice, serial)
        assert device is not None and device.profile_status == "assigned" and device.assignment_blocked_until is None


def test_remove_marks_removed(apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient) -> None:
    serial = seed_devices(apple.state, server.server_id, 1)[0]
    uuid = client.ok("POST", "/profile", json={**VALID, "devices": [serial]})["profile_uuid"]
    answer = client.ok("DELETE", "/profile/devices", json={"devices": [serial, "OTHER"], "profile_uuid": uuid})
    assert answer == {"devices": {serial: "SUCCESS", "OTHER": "NOT_ACCESSIBLE"}}
    device = client.ok("POST", "/devices", json={"devices": [serial]})["devices"][serial]
    assert device["profile_status"] == "removed" and device["profile_uuid"] == uuid
    assert client.call("DELETE", "/profile/devices", json={"devices": []}).text == "DEVICE_ID_REQUIRED"
