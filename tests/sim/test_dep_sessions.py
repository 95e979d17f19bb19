"""Sessions on DEP API calls: expiry by the clock, unknown sessions, rotation, terms and deleted servers (2.2)."""

from __future__ import annotations

from sqlalchemy import select

from pippin.sim.models import SimMDMServer, SimOrganization
from tests.sim.apple import (
    DEPTestClient,
    ServerCredentials,
    create_test_server,
)
from tests.simulator import RunningSimulator


def test_sessions_expire_by_the_simulators_clock(sim: RunningSimulator) -> None:
    credentials = create_test_server(sim.state)
    assert sim.portal.put("/portal/session", json={"ttl_seconds": 60}).json() == {"ttl_seconds": 60}
    with DEPTestClient(sim.base_url, credentials) as dep:
        assert dep.call("GET", "/account").status_code == 200
        sim.portal.post("/portal/clock", json={"advance_seconds": 61})
        response = dep.call("GET", "/account")
        assert (response.status_code, response.text) == (401, "UNAUTHORIZED")
        assert dep.open_session().status_code == 200
        assert dep.call("GET", "/account").status_code == 200


def test_a_session_past_half_its_life_is_rotated_and_the_old_one_lasts_until_expiry(sim: RunningSimulator) -> None:
    credentials = create_test_server(sim.state)
    sim.portal.put("/portal/session", json={"ttl_seconds": 100})
    with DEPTestClient(sim.base_url, credentials) as dep:
        fresh = dep.call("GET", "/account")
        assert "X-ADM-Auth-Session" not in fresh.headers
        old = dep.session_token
        sim.portal.post("/portal/clock", json={"advance_seconds": 60})
        rotated = dep.call("GET", "/account")
        new = rotated.headers["X-ADM-Auth-Session"]
        assert rotated.status_code == 200 and new != old
        sim.portal.post("/portal/clock", json={"advance_seconds": 45})
        assert dep.call("GET", "/account").status_code == 401  # the old one expired at 100 s
        dep.session_token = new
        assert dep.call("GET", "/account").status_code == 200  # the new one lives to 160 s


def test_missing_and_unknown_sessions(apple: RunningSimulator, client: DEPTestClient) -> None:
    client.session_token = "unknown-session"
    response = client.call("GET", "/account")
    assert (response.status_code, response.text) == (403, "FORBIDDEN")
    response = client.http.get("/account")
    assert (response.status_code, response.text) == (401, "UNAUTHORIZED")
    client.session_token = "x" * 5000
    assert client.call("GET", "/account").status_code == 403


def test_terms_and_deleted_servers_stop_every_call(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    assert client.call("GET", "/account").status_code == 200
    with apple.state.transaction() as session:
        session.scalars(select(SimOrganization)).one().terms_pending = True
    for method, path in (("GET", "/account"), ("POST", "/server/devices"), ("GET", "/profile?profile_uuid=X")):
        response = client.call(method, path, json={} if method == "POST" else None)
        assert (response.status_code, response.text) == (403, "T_C_NOT_SIGNED")
    with apple.state.transaction() as session:
        session.scalars(select(SimOrganization)).one().terms_pending = False
        row = session.get(SimMDMServer, server.server_id)
        assert row is not None
        row.access_denied = True
    response = client.call("GET", "/account")
    assert (response.status_code, response.text) == (403, "ACCESS_DENIED")


def test_session_ttl_control_refuses_bad_values(apple: RunningSimulator) -> None:
    for body in (
        {"ttl_seconds": 0},
        {"ttl_seconds": 1.5},
        {"ttl_seconds": True},
        {"ttl": 5},
        [],
        {"ttl_seconds": 10**9},
    ):
        response = apple.portal.put("/portal/session", json=body)
        assert response.status_code == 400 and response.json()["error"]
    assert apple.portal.get("/portal/session").json() == {"ttl_seconds": 300}
