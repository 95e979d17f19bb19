"""Fetch and sync with real cursors (reference 3.2, 3.3, 6), device details, disown and activation lock."""

from __future__ import annotations

import base64

from sqlalchemy import func, select

from pippin.sim.cursors import Cursor, encode_cursor
from pippin.sim.models import SimDevice, SimDeviceEvent, SimOrganization
from tests.sim.apple import (
    DEPTestClient,
    ServerCredentials,
    create_test_server,
    seed_devices,
)
from tests.simulator import RunningSimulator


def _fetch_all(client: DEPTestClient, limit: int) -> tuple[list[str], str, int]:
    serials: list[str] = []
    cursor = None
    pages = 0
    while True:
        body: dict[str, object] = {"limit": limit}
        if cursor:
            body["cursor"] = cursor
        page = client.ok("POST", "/server/devices", json=body)
        pages += 1
        serials += [device["serial_number"] for device in page["devices"]]
        cursor = page["cursor"]
        assert "fetched_until" in page
        if not page["more_to_follow"]:
            return serials, cursor, pages


def _events(apple: RunningSimulator) -> int:
    with apple.state.transaction() as session:
        return session.scalar(select(func.count()).select_from(SimDeviceEvent)) or 0


def test_fetch_pages_every_device_once_then_hands_over_to_sync(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    serials = seed_devices(apple.state, server.server_id, 25)
    fetched, cursor, pages = _fetch_all(client, 10)
    assert fetched == serials and pages == 3
    # The final fetch cursor is a sync cursor: fetching with it again is exhausted.
    response = client.call("POST", "/server/devices", json={"cursor": cursor})
    assert (response.status_code, response.text) == (400, "EXHAUSTED_CURSOR")
    # Devices assigned after the fetch started arrive through sync, not the fetch.
    later = seed_devices(apple.state, server.server_id, 2)
    page = client.ok("POST", "/devices/sync", json={"cursor": cursor})
    assert [device["serial_number"] for device in page["devices"]] == later
    assert all(device["op_type"] == "added" and device["op_date"] for device in page["devices"])
    assert page["more_to_follow"] is False
    empty = client.ok("POST", "/devices/sync", json={"cursor": page["cursor"]})
    assert empty["devices"] == [] and empty["cursor"] and empty["more_to_follow"] is False


def test_a_fetch_is_frozen_at_its_start(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    first = seed_devices(apple.state, server.server_id, 5)
    page = client.ok("POST", "/server/devices", json={"limit": 3})
    seed_devices(apple.state, server.server_id, 4)
    rest = client.ok("POST", "/server/devices", json={"cursor": page["cursor"], "limit": 3})
    assert [d["serial_number"] for d in page["devices"] + rest["devices"]] == first
    assert rest["more_to_follow"] is False


def test_sync_reports_modifications_and_deletions_and_may_repeat_a_serial(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    serials = seed_devices(apple.state, server.server_id, 3)
    _, cursor, _ = _fetch_all(client, 100)
    profile = client.ok("POST", "/profile", json={"profile_name": "P", "url": "https://mdm.example.com/enroll"})
    client.ok("POST", "/profile/devices", json={"profile_uuid": profile["profile_uuid"], "devices": serials[:1]})
    client.ok("DELETE", "/profile/devices", json={"devices": serials[:1]})
    client.ok("POST", "/devices/disown", json={"devices": serials[1:2]})
    page = client.ok("POST", "/devices/sync", json={"cursor": cursor, "limit": 2})
    assert page["more_to_follow"] is True
    page2 = client.ok("POST", "/devices/sync", json={"cursor": page["cursor"]})
    events = [(d["serial_number"], d["op_type"], d.get("profile_status")) for d in page["devices"] + page2["devices"]]
    assert events == [
        (serials[0], "modified", "assigned"),
        (serials[0], "modified", "removed"),
        (serials[1], "deleted", None),
    ]
    assert page2["devices"][-1].keys() == {"serial_number", "op_type", "op_date"}
    assert page2["fetched_until"] == page2["devices"][-1]["op_date"]
    fetched, _, _ = _fetch_all(client, 100)
    assert fetched == [serials[0], serials[2]]


def test_cursor_errors(apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient) -> None:
    seed_devices(apple.state, server.server_id, 3)
    page = client.ok("POST", "/server/devices", json={"limit": 1})
    cursor = page["cursor"]
    response = client.call("POST", "/devices/sync", json={})
    assert (response.status_code, response.text) == (400, "CURSOR_REQUIRED")
    # A fetch in progress is not a sync cursor.
    assert client.call("POST", "/devices/sync", json={"cursor": cursor}).text == "INVALID_CURSOR"
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    forged_position = raw.replace(b":fetch:", b":fetch:9", 1)
    for bad in (
        "garbage!!",
        "x" * 1001,
        cursor[:-2],
        base64.urlsafe_b64encode(forged_position).decode().rstrip("="),
        encode_cursor(Cursor(server.server_id, "sync", 0, 0, apple.state.clock.now()), secret="not-the-secret"),
    ):
        for path in ("/server/devices", "/devices/sync"):
            response = client.call("POST", path, json={"cursor": bad})
            assert (response.status_code, response.text) == (400, "INVALID_CURSOR"), (path, bad)
    other = create_test_server(apple.state)
    with DEPTestClient(apple.base_url, other) as stranger:
        response = stranger.call("POST", "/server/devices", json={"cursor": cursor})
        assert (response.status_code, response.text) == (400, "INVALID_CURSOR")


def test_cursors_expire_after_seven_days(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    # Forge nothing: sign an old cursor with the organisation's own secret, as the simulator did 8 days ago.
    with apple.state.transaction() as session:
        secret = session.scalars(select(SimOrganization)).one().cursor_secret
    now = apple.state.clock.now()
    from datetime import timedelta

    old = encode_cursor(Cursor(server.server_id, "sync", 0, 0, now - timedelta(days=8)), secret=secret)
    fresh = encode_cursor(Cursor(server.server_id, "sync", 0, 0, now - timedelta(days=6)), secret=secret)
    assert client.call("POST", "/devices/sync", json={"cursor": old}).text == "EXPIRED_CURSOR"
    assert client.call("POST", "/server/devices", json={"cursor": old}).text == "EXPIRED_CURSOR"
    assert client.call("POST", "/devices/sync", json={"cursor": fresh}).status_code == 200


def test_limit_default_clamp_and_refusals(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    seed_devices(apple.state, server.server_id, 1005)
    assert len(client.ok("POST", "/server/devices", json={})["devices"]) == 100
    assert len(client.ok("POST", "/server/devices", json={"limit": 5000})["devices"]) == 1000
    before = _events(apple)
    for limit in (0, -1, 1.5, "10", True, [], {}):
        response = client.call("POST", "/server/devices", json={"limit": limit})
        assert (response.status_code, response.text) == (400, "MALFORMED_REQUEST_BODY"), limit
    assert _events(apple) == before


def test_device_details_and_not_accessible(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    mine = seed_devices(apple.state, server.server_id, 2)
    other = create_test_server(apple.state)
    theirs = seed_devices(apple.state, other.server_id, 1)
    answer = client.ok("POST", "/devices", json={"devices": [*mine, *theirs, "NOSUCHSERIAL"]})["devices"]
    assert answer[mine[0]]["response_status"] == "SUCCESS" and answer[mine[0]]["serial_number"] == mine[0]
    assert answer[theirs[0]] == {"response_status": "NOT_ACCESSIBLE"}
    assert answer["NOSUCHSERIAL"] == {"response_status": "NOT_ACCESSIBLE"}
    for body in ({"devices": []}, {}):
        response = client.call("POST", "/devices", json=body)
        assert (response.status_code, response.text) == (400, "DEVICE_ID_REQUIRED")


def test_disown_releases_only_this_servers_devices(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    mine = seed_devices(apple.state, server.server_id, 1)
    other = create_test_server(apple.state)
    theirs = seed_devices(apple.state, other.server_id, 1)
    answer = client.ok("POST", "/devices/disown", json={"devices": [mine[0], theirs[0]]})
    assert answer == {"devices": {mine[0]: "SUCCESS", theirs[0]: "NOT_ACCESSIBLE"}}
    with apple.state.transaction() as session:
        assert session.get(SimDevice, mine[0]).server_id is None  # type: ignore[union-attr]
        assert session.get(SimDevice, theirs[0]).server_id == other.server_id  # type: ignore[union-attr]


def test_activation_lock(apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient) -> None:
    phone = seed_devices(apple.state, server.server_id, 1)[0]
    mac = seed_devices(apple.state, server.server_id, 1, family="Mac")[0]
    escrow = "ab" * 32
    assert client.ok("POST", "/device/activationlock", json={"device": phone, "escrow_key": escrow}) == {
        "serial_number": phone,
        "response_status": "SUCCESS",
    }
    again = client.ok("POST", "/device/activationlock", json={"device": phone})
    assert again["response_status"] == "DEVICE_ALREADY_LOCKED"
    assert client.ok("POST", "/device/activationlock", json={"device": mac})["response_status"] == (
        "DEVICE_NOT_SUPPORTED"
    )
    assert client.ok("POST", "/device/activationlock", json={"device": "NOPE"})["response_status"] == "NOT_ACCESSIBLE"
    assert client.call("POST", "/device/activationlock", json={}).text == "DEVICE_ID_REQUIRED"
    for bad in ({"device": phone, "escrow_key": "1234-5678"}, {"device": 5}, {"device": phone, "lost_message": 1}):
        assert client.call("POST", "/device/activationlock", json=bad).text == "MALFORMED_REQUEST_BODY"
