"""Test controls: the clock, fault configuration (strict schema, depsim's own file), and each fault kind."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from pippin.sim.models import SimDevice, SimDeviceEvent
from tests.conftest import fixture_path
from tests.sim.apple import DEPTestClient, ServerCredentials, seed_devices
from tests.simulator import RunningSimulator


def _events(apple: RunningSimulator) -> int:
    with apple.state.transaction() as session:
        return session.scalar(select(func.count()).select_from(SimDeviceEvent)) or 0


def test_the_clock_moves_forward_only(sim: RunningSimulator) -> None:
    before = sim.portal.get("/portal/clock").json()
    moved = sim.portal.post("/portal/clock", json={"advance_seconds": 86400})
    assert moved.status_code == 200 and moved.json()["offset_seconds"] == pytest.approx(86400)
    assert moved.json()["now"] > before["now"]
    for body in (
        {"advance_seconds": -1},
        {"advance_seconds": "5"},
        {"advance_seconds": True},
        {},
        [1],
        {"advance_seconds": 1e300},
        {"advance_seconds": 1, "x": 2},
    ):
        response = sim.portal.post("/portal/clock", json=body)
        assert response.status_code == 400 and response.json()["error"], body
    for raw in (b'{"advance_seconds": NaN}', b'{"advance_seconds": Infinity}', b"{", b"\xff"):
        assert sim.portal.post("/portal/clock", content=raw).status_code == 400
    assert sim.portal.get("/portal/clock").json()["offset_seconds"] == pytest.approx(86400)


def test_depsims_own_failure_config_is_accepted_and_played_in_order(
    apple: RunningSimulator, client: DEPTestClient
) -> None:
    config = json.loads(fixture_path("commandment", "apple-depsim-config_failures.json").read_text())
    assert client.open_session().status_code == 200
    response = apple.portal.put("/portal/faults", json=config)
    assert response.status_code == 200, response.text
    assert response.json()["config"]["get_account_responses"] == config["get_account_responses"]
    token = client.session_token
    sessions = [client.open_session() for _ in range(7)]
    assert [(r.status_code, r.text) for r in sessions[:6]] == [
        (400, "BAD_REQUEST"),
        (403, "ACCESS_DENIED"),
        (403, "T_C_NOT_SIGNED"),
        (405, "METHOD_NOT_ALLOWED"),
        (401, "UNAUTHORIZED"),
        (429, "TOO_MANY_REQUESTS"),
    ]
    assert sessions[6].status_code == 200
    client.session_token = token
    answers = [client.call("GET", "/account") for _ in range(4)]
    assert [(r.status_code, r.text) for r in answers[:3]] == [
        (403, "FORBIDDEN"),
        (401, "UNAUTHORIZED"),
        (405, "METHOD_NOT_ALLOWED"),
    ]
    assert answers[3].status_code == 200  # the script is used up: normal behaviour again
    assert apple.portal.get("/portal/faults").json()["progress"]["scripted"]["get_account"] == 3


def test_scripted_session_answers(apple: RunningSimulator, server: ServerCredentials) -> None:
    apple.portal.put(
        "/portal/faults",
        json={
            "get_session_responses": [
                {"count": 2, "response": "too_many_requests"},
                {"count": 1, "response": "forbidden_t_c_not_signed"},
            ],
            "retry_after_seconds": 7,
        },
    )
    with DEPTestClient(apple.base_url, server) as dep:
        first, second, third, fourth = (dep.open_session() for _ in range(4))
    assert (first.status_code, first.text, first.headers["Retry-After"]) == (429, "TOO_MANY_REQUESTS", "7")
    assert second.status_code == 429
    assert (third.status_code, third.text) == (403, "T_C_NOT_SIGNED")
    assert fourth.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"rates": {"post_nowhere": {"internal_server_error": 0.1}}},
        {"rates": {"get_account": {"explode": 0.1}}},
        {"rates": {"get_account": {"internal_server_error": 1.5}}},
        {"rates": {"get_account": {"internal_server_error": -0.1}}},
        {"rates": {"get_account": {"internal_server_error": "0.1"}}},
        {"rates": {"get_account": {"internal_server_error": 0.6, "service_unavailable": 0.6}}},
        {"rates": {"get_account": {"repeated_cursor": 0.5}}},
        {"rates": {"get_account": {"failed": 0.5}}},
        {"rates": {"get_session": {"session_expired": 0.5}}},
        {"post_nowhere_responses": [{"count": 1, "response": "forbidden"}]},
        {"get_account_responses": [{"count": 0, "response": "forbidden"}]},
        {"get_account_responses": [{"count": 1, "response": "explode"}]},
        {"get_account_responses": [{"count": 1, "response": "failed"}]},
        {"get_account_responses": "forbidden"},
        {"seed": "7"},
        {"latency_seconds": 1000},
        {"unknown": 1},
        [],
    ],
)
def test_invalid_fault_configs_are_refused_and_change_nothing(apple: RunningSimulator, body: Any) -> None:
    good = {"rates": {"get_account": {"latency": 0.5}}, "seed": 3}
    assert apple.portal.put("/portal/faults", json=good).status_code == 200
    response = apple.portal.put("/portal/faults", json=body)
    assert response.status_code == 400 and response.json()["error"]
    assert apple.portal.get("/portal/faults").json()["config"]["rates"] == good["rates"]


def test_rate_faults_are_reproducible_with_a_seed(apple: RunningSimulator, client: DEPTestClient) -> None:
    config = {"seed": 42, "rates": {"get_account": {"internal_server_error": 0.3, "service_unavailable": 0.3}}}

    def run() -> list[int]:
        apple.portal.put("/portal/faults", json=config)
        return [client.call("GET", "/account").status_code for _ in range(20)]

    first = run()
    assert run() == first
    assert {500, 503, 200} <= set(first)
    assert all(code in (200, 500, 503) for code in first)


def test_429_carries_retry_after_and_changes_nothing(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    serial = seed_devices(apple.state, server.server_id, 1)[0]
    uuid = client.ok("POST", "/profile", json={"profile_name": "P", "url": "https://mdm.example.com/e"})["profile_uuid"]
    before = _events(apple)
    apple.portal.put(
        "/portal/faults", json={"rates": {"post_profile_devices": {"too_many_requests": 1}}, "retry_after_seconds": 30}
    )
    response = client.call("POST", "/profile/devices", json={"profile_uuid": uuid, "devices": [serial]})
    assert (response.status_code, response.text, response.headers["Retry-After"]) == (429, "TOO_MANY_REQUESTS", "30")
    assert response.headers["content-type"] == "application/json;charset=UTF8"
    assert _events(apple) == before
    with apple.state.transaction() as session:
        assert session.get(SimDevice, serial).profile_status == "empty"  # type: ignore[union-attr]


def test_a_dropped_connection_is_a_broken_response(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    seed_devices(apple.state, server.server_id, 2)
    apple.portal.put(
        "/portal/faults", json={"post_server_devices_responses": [{"count": 1, "response": "dropped_connection"}]}
    )
    with pytest.raises(httpx.HTTPError):
        client.call("POST", "/server/devices", json={})
    assert len(client.ok("POST", "/server/devices", json={})["devices"]) == 2


def test_latency_delays_a_normal_answer(apple: RunningSimulator, client: DEPTestClient) -> None:
    apple.portal.put("/portal/faults", json={"rates": {"get_account": {"latency": 1}}, "latency_seconds": 0.3})
    response = client.call("GET", "/account")
    assert response.status_code == 200 and response.elapsed.total_seconds() >= 0.3


def test_session_expired_fault_ends_the_session(apple: RunningSimulator, client: DEPTestClient) -> None:
    assert client.call("GET", "/account").status_code == 200
    apple.portal.put("/portal/faults", json={"get_account_responses": [{"count": 1, "response": "session_expired"}]})
    assert (client.call("GET", "/account").status_code, client.call("GET", "/account").status_code) == (401, 401)
    assert client.open_session().status_code == 200
    assert client.call("GET", "/account").status_code == 200


def test_repeated_cursor_quirk(apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient) -> None:
    cursor = client.ok("POST", "/server/devices", json={})["cursor"]
    seed_devices(apple.state, server.server_id, 1)
    apple.portal.put("/portal/faults", json={"rates": {"post_devices_sync": {"repeated_cursor": 1}}})
    page = client.ok("POST", "/devices/sync", json={"cursor": cursor})
    assert page["cursor"] == cursor and page["more_to_follow"] is True and len(page["devices"]) == 1
    apple.portal.put("/portal/faults", json={})
    page = client.ok("POST", "/devices/sync", json={"cursor": cursor})
    assert page["cursor"] != cursor and page["more_to_follow"] is False


def test_cooling_devices_can_be_hidden_from_sync(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    serials = seed_devices(apple.state, server.server_id, 2)
    cursor = client.ok("POST", "/server/devices", json={})["cursor"]
    uuid = client.ok("POST", "/profile", json={"profile_name": "P", "url": "https://mdm.example.com/e"})["profile_uuid"]
    client.ok("POST", "/profile/devices", json={"profile_uuid": uuid, "devices": serials})
    apple.portal.put(
        "/portal/faults",
        json={"hide_cooling_devices": True, "post_profile_devices_responses": [{"count": 1, "response": "throttled"}]},
    )
    answer = client.ok("POST", "/profile/devices", json={"profile_uuid": uuid, "devices": serials[:1]})
    assert answer["devices"] == {serials[0]: "THROTTLED"} and answer["retry_after_seconds"] == 60
    page = client.ok("POST", "/devices/sync", json={"cursor": cursor})
    assert {device["serial_number"] for device in page["devices"]} == {serials[1]}


def test_rate_failures_on_assignment(apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient) -> None:
    serials = seed_devices(apple.state, server.server_id, 40)
    apple.portal.put("/portal/faults", json={"seed": 1, "rates": {"all": {"failed": 0.25, "throttled": 0.25}}})
    uuid = client.ok("POST", "/profile", json={"profile_name": "P", "url": "https://mdm.example.com/e"})["profile_uuid"]
    answer = client.ok("PUT", "/profile/devices", json={"profile_uuid": uuid, "devices": serials})
    outcomes = set(answer["devices"].values())
    assert outcomes == {"SUCCESS", "FAILED", "THROTTLED"}
