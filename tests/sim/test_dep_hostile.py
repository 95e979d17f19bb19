"""Hostile input to every DEP endpoint: a 4xx in Apple's shape, and nothing changed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from pippin.sim.models import SimDevice, SimDeviceEvent, SimProfile, SimServiceDiscovery, SimSession
from tests.sim.apple import DEPTestClient, ServerCredentials, seed_devices
from tests.simulator import RunningSimulator

CONTENT_TYPE = "application/json;charset=UTF8"
BODY_ENDPOINTS = [
    ("POST", "/server/devices"),
    ("POST", "/devices/sync"),
    ("POST", "/devices"),
    ("POST", "/devices/disown"),
    ("POST", "/device/activationlock"),
    ("POST", "/profile"),
    ("POST", "/profile/devices"),
    ("PUT", "/profile/devices"),
    ("DELETE", "/profile/devices"),
    ("POST", "/account-driven-enrollment/profile"),
]

_BAD_SERIALS = [
    {"devices": "ABC"},
    {"devices": [1, 2]},
    {"devices": [["x"]]},
    {"devices": ["x" * 65]},
    {"devices": [""]},
]
WRONG_TYPES: dict[str, list[dict[str, object]]] = {
    "/server/devices": [{"limit": "x"}, {"cursor": 5}, {"limit": 2.5}],
    "/devices/sync": [{"cursor": 5}, {"cursor": ["c"]}, {"cursor": "c", "limit": []}],
    "/devices": _BAD_SERIALS,
    "/devices/disown": _BAD_SERIALS,
    "/device/activationlock": [{"device": ["x"]}, {"device": 5}, {"device": "x", "escrow_key": 5}],
    "/profile": [{"profile_name": 5, "url": "https://e.com/"}, {"profile_name": "p", "url": ["https://e.com/"]}],
    "/profile/devices": [{"profile_uuid": {}, "devices": ["A"]}, *({"profile_uuid": "A", **b} for b in _BAD_SERIALS)],
    "/account-driven-enrollment/profile": [
        {"mdm_service_discovery_url": 5},
        {"mdm_service_discovery_url": ["https://e.com/"]},
        {"mdm_service_discovery_url": {"url": "https://e.com/"}},
    ],
}


def _fingerprint(apple: RunningSimulator) -> tuple[object, ...]:
    with apple.state.transaction() as session:
        return (
            session.scalar(select(func.count()).select_from(SimDeviceEvent)),
            session.scalar(select(func.count()).select_from(SimProfile)),
            session.scalar(select(func.count()).select_from(SimServiceDiscovery)),
            tuple(
                session.execute(
                    select(
                        SimDevice.serial_number,
                        SimDevice.server_id,
                        SimDevice.profile_status,
                        SimDevice.activation_locked_at,
                    ).order_by(SimDevice.serial_number)
                )
            ),
        )


@pytest.fixture
def armed(apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient) -> Iterator[DEPTestClient]:
    seed_devices(apple.state, server.server_id, 3)
    assert client.call("GET", "/account").status_code == 200
    yield client


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS)
def test_malformed_bodies_are_400_and_change_nothing(
    apple: RunningSimulator, armed: DEPTestClient, method: str, path: str
) -> None:
    before = _fingerprint(apple)
    for raw in (b"{", b"[]", b'"devices"', b"null", b"\xff\xfe", b'{"devices": NaN}', b"[" * 100_000, b""):
        response = armed.call(method, path, content=raw)
        assert (response.status_code, response.text) == (400, "MALFORMED_REQUEST_BODY"), raw[:20]
        assert response.headers["content-type"] == CONTENT_TYPE
    for body in WRONG_TYPES[path]:
        response = armed.call(method, path, json=body)
        assert (response.status_code, response.text) == (400, "MALFORMED_REQUEST_BODY"), body
        assert response.headers["content-type"] == CONTENT_TYPE
    assert _fingerprint(apple) == before


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS[:3])
def test_huge_bodies_are_refused(apple: RunningSimulator, armed: DEPTestClient, method: str, path: str) -> None:
    before = _fingerprint(apple)
    huge = b'{"devices": ["' + b"A" * (11 * 1024 * 1024) + b'"]}'
    response = armed.call(method, path, content=huge)
    assert (response.status_code, response.text) == (413, "REQUEST_ENTITY_TOO_LARGE")

    def chunks() -> Iterator[bytes]:
        for _ in range(12):
            yield b" " * (1024 * 1024)

    response = armed.call(method, path, content=chunks())
    assert response.status_code == 413
    assert _fingerprint(apple) == before


def test_too_many_serials_are_refused(apple: RunningSimulator, armed: DEPTestClient) -> None:
    before = _fingerprint(apple)
    serials = [f"S{i:06d}" for i in range(1001)]
    for method, path in (("POST", "/devices/disown"), ("DELETE", "/profile/devices")):
        response = armed.call(method, path, json={"devices": serials})
        assert (response.status_code, response.text) == (400, "MALFORMED_REQUEST_BODY")
    response = armed.call("POST", "/devices", json={"devices": [f"S{i:06d}" for i in range(10_001)]})
    assert response.status_code == 400
    assert _fingerprint(apple) == before


def test_wrong_methods_and_unknown_paths(apple: RunningSimulator, armed: DEPTestClient) -> None:
    for method, path in (
        ("GET", "/server/devices"),
        ("POST", "/account"),
        ("DELETE", "/profile"),
        ("GET", "/profile/devices"),
        ("POST", "/session"),
        ("GET", "/devices/disown"),
        ("PUT", "/account-driven-enrollment/profile"),
        ("POST", "/os-beta-enrollment/tokens"),
        ("POST", "/device/replacementDetails"),
    ):
        response = armed.call(method, path)
        assert (response.status_code, response.text) == (405, "METHOD_NOT_ALLOWED"), (method, path)
        assert response.headers["content-type"] == CONTENT_TYPE
    response = armed.call("GET", "/no/such/endpoint")
    assert (response.status_code, response.text, response.headers["content-type"]) == (404, "NOT_FOUND", CONTENT_TYPE)
    # The portal keeps its own JSON errors.
    assert apple.portal.get("/portal/no-such-page").status_code == 404


def test_every_endpoint_needs_a_user_agent_and_a_session(apple: RunningSimulator, armed: DEPTestClient) -> None:
    with apple.state.transaction() as session:
        sessions_before = session.scalar(select(func.count()).select_from(SimSession))
    reads = [
        ("GET", "/account"),
        ("GET", "/profile?profile_uuid=X"),
        ("GET", "/os-beta-enrollment/tokens"),
        ("GET", "/account-driven-enrollment/profile"),
        ("DELETE", "/account-driven-enrollment/profile"),
        ("GET", "/device/replacementDetails?device=X"),
    ]
    for method, path in [*reads, *BODY_ENDPOINTS]:
        response = armed.http.request(method, path, headers={"User-Agent": "", "X-ADM-Auth-Session": "x"}, json={})
        assert (response.status_code, response.text) == (400, "USER_AGENT_MISSING")
        response = armed.http.request(method, path, json={})
        assert (response.status_code, response.text) == (401, "UNAUTHORIZED")
    with apple.state.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SimSession)) == sessions_before
