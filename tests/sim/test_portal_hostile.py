"""Hostile input to every portal endpoint: a 4xx JSON error, and the simulator's state unchanged."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from pippin.sim.models import SimDevice, SimDeviceEvent, SimMDMServer, SimServerToken
from tests.sim.portal_client import create_devices, create_server
from tests.simulator import RunningSimulator


def _fingerprint(sim: RunningSimulator) -> tuple[Any, ...]:
    with sim.state.transaction() as session:
        counts = tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (SimMDMServer, SimDevice, SimDeviceEvent, SimServerToken)
        )
        assigned = session.scalar(select(func.count()).where(SimDevice.server_id.is_not(None)))
        return (*counts, assigned, sim.state.organization(session).terms_pending)


GARBAGE = [
    b"{not json",
    b"\x00\xff\xfe binary",
    b"[]",
    b'"a string"',
    b"null",
    b'{"count": "5"}',
    b'{"count": 5.5}',
    b'{"count": true}',
    b'{"server_uuid": 7, "serials": "ABC"}',
    b'{"serials": [1, 2, 3], "server_uuid": "X"}',
    b'{"unexpected": 1}',
    b'{"name": null, "public_key_pem": null, "admin_apple_id": null}',
    b'{"count": 100001}',
    b'{"count": 0}',
    b'{"count": -1}',
    b'{"count": 5, "family": "Mac"}',
    b'{"asset_tag": ["x"]}',
]
ENDPOINTS = [
    ("POST", "/portal/mdm-servers"),
    ("PUT", "/portal/mdm-servers/{server}/public-key"),
    ("POST", "/portal/devices"),
    ("PATCH", "/portal/devices/{serial}"),
    ("POST", "/portal/assignments"),
    ("DELETE", "/portal/assignments"),
    ("POST", "/activation/cloud-configuration"),
]


def test_garbage_bodies_get_a_4xx_json_error_and_change_nothing(sim: RunningSimulator) -> None:
    server = create_server(sim.portal)
    (serial,) = create_devices(sim.portal, 1)
    before = _fingerprint(sim)
    for method, path in ENDPOINTS:
        url = path.format(server=server, serial=serial)
        for body in GARBAGE:
            response = sim.portal.request(method, url, content=body, headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, (method, url, body, response.status_code)
            payload = response.json()
            assert isinstance(payload["error"], str) and payload["detail"], (method, url, body)
    assert _fingerprint(sim) == before


def test_oversized_bodies_are_refused_before_parsing(sim: RunningSimulator) -> None:
    before = _fingerprint(sim)
    body = b'{"serials": ["' + b"A" * (9 * 1024 * 1024) + b'"]}'
    for method, path in [*ENDPOINTS, ("POST", "/portal/assignments/csv?server_uuid=X")]:
        response = sim.portal.request(method, path.format(server="X", serial="X"), content=body)
        assert response.status_code == 413 and response.json()["error"] == "body_too_large", path
    assert _fingerprint(sim) == before


def test_a_streamed_oversized_body_without_length_is_refused(sim: RunningSimulator) -> None:
    def chunks() -> Any:
        for _ in range(10):
            yield b"A" * (1024 * 1024)

    response = sim.portal.post("/portal/assignments/csv", params={"server_uuid": "X"}, content=chunks())
    assert response.status_code == 413


def test_too_many_serials_are_refused(sim: RunningSimulator) -> None:
    server = create_server(sim.portal)
    response = sim.portal.post("/portal/assignments", json={"server_uuid": server, "serials": ["A1"] * 100_001})
    assert response.status_code == 400
    assert _fingerprint(sim)[4] == 0


BAD_ASSIGNMENTS: list[dict[str, Any]] = [
    {"server_uuid": "X", "serials": ["A1"]},
    {"server_uuid": "{server}", "serials": []},
    {"server_uuid": "{server}"},
    {"server_uuid": "{server}", "serials": ["A1"], "order_numbers": ["W1"]},
    {"server_uuid": "{server}", "serials": ["ok1", "no spaces"]},
    {"server_uuid": "{server}", "serials": ["x" * 65]},
    {"server_uuid": "{server}", "order_numbers": [""]},
    {"server_uuid": "{server}", "serials": ["{serial}"], "assigned_by": "not an email"},
]


def test_bad_assignments_are_refused_whole(sim: RunningSimulator) -> None:
    server = create_server(sim.portal)
    (serial,) = create_devices(sim.portal, 1)
    before = _fingerprint(sim)
    for body in BAD_ASSIGNMENTS:
        filled = {
            key: (
                value.format(server=server, serial=serial)
                if isinstance(value, str)
                else [item.format(server=server, serial=serial) for item in value]
            )
            for key, value in body.items()
        }
        response = sim.portal.post("/portal/assignments", json=filled)
        assert response.status_code in (400, 404) and response.json()["error"], body
    assert _fingerprint(sim) == before


def test_unknown_routes_and_methods_do_not_change_anything(sim: RunningSimulator) -> None:
    before = _fingerprint(sim)
    assert sim.portal.get("/portal/profiles/NOPE").status_code == 404
    assert sim.portal.put("/portal/terms").status_code == 405
    assert sim.portal.get("/portal/devices/NOPE").status_code == 404
    assert _fingerprint(sim) == before
