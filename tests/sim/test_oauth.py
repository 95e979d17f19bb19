"""``GET /session``: OAuth 1.0a as Apple checks it, signatures made by oauthlib as a real DEP client makes them."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import func, select

from pippin.sim.models import SimNonce, SimOrganization, SimSession
from tests.sim.apple import (
    USER_AGENT,
    DEPTestClient,
    ServerCredentials,
    create_test_server,
    issue_test_token,
    oauth_headers,
)
from tests.simulator import RunningSimulator

CONTENT_TYPE = "application/json;charset=UTF8"


@pytest.fixture
def server(sim: RunningSimulator) -> ServerCredentials:
    return create_test_server(sim.state)


def _get_session(sim: RunningSimulator, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{sim.base_url}/session", headers={"User-Agent": USER_AGENT, **headers})


def _session_count(sim: RunningSimulator) -> int:
    with sim.state.transaction() as session:
        return session.scalar(select(func.count()).select_from(SimSession)) or 0


def test_a_correctly_signed_request_gets_a_session_token(sim: RunningSimulator, server: ServerCredentials) -> None:
    response = _get_session(sim, oauth_headers(sim.base_url, server))
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    token = response.json()["auth_session_token"]
    assert len(token) > 100
    with DEPTestClient(sim.base_url, server) as client:
        client.session_token = token
        assert client.ok("GET", "/account")["server_uuid"] == server.server_uuid


def test_realm_may_be_present_or_absent(sim: RunningSimulator, server: ServerCredentials) -> None:
    assert _get_session(sim, oauth_headers(sim.base_url, server, realm="ADM")).status_code == 200
    assert _get_session(sim, oauth_headers(sim.base_url, server)).status_code == 200


def test_a_wrong_secret_is_signature_invalid(sim: RunningSimulator, server: ServerCredentials) -> None:
    response = _get_session(sim, oauth_headers(sim.base_url, server, consumer_secret="CS_wrong"))
    assert (response.status_code, response.text) == (401, "oauth_problem=signature_invalid")
    assert _session_count(sim) == 0


def test_a_signature_for_another_url_is_invalid(sim: RunningSimulator, server: ServerCredentials) -> None:
    headers = oauth_headers("https://mdmenrollment.apple.com", server)
    response = _get_session(sim, headers)
    assert (response.status_code, response.text) == (401, "oauth_problem=signature_invalid")


def test_an_unknown_token_is_rejected(sim: RunningSimulator, server: ServerCredentials) -> None:
    stranger = ServerCredentials(server.server_id, server.server_uuid, "CK_x", "CS_x", "AT_unknown", "AS_x")
    response = _get_session(sim, oauth_headers(sim.base_url, stranger))
    assert (response.status_code, response.text) == (401, "oauth_problem=token_rejected")
    mismatched = ServerCredentials(
        server.server_id, server.server_uuid, "CK_other", server.consumer_secret, server.access_token, "AS_x"
    )
    response = _get_session(sim, oauth_headers(sim.base_url, mismatched))
    assert (response.status_code, response.text) == (401, "oauth_problem=token_rejected")


def test_a_replayed_nonce_is_refused_and_changes_nothing(sim: RunningSimulator, server: ServerCredentials) -> None:
    headers = oauth_headers(sim.base_url, server, nonce="fixed-nonce-1")
    assert _get_session(sim, headers).status_code == 200
    replay = _get_session(sim, headers)
    assert (replay.status_code, replay.text) == (401, "oauth_problem=nonce_used")
    assert _session_count(sim) == 1


def test_a_stale_or_future_timestamp_is_refused(sim: RunningSimulator, server: ServerCredentials) -> None:
    for timestamp in (str(int(time.time()) - 3600), str(int(time.time()) + 3600)):
        response = _get_session(sim, oauth_headers(sim.base_url, server, timestamp=timestamp))
        assert (response.status_code, response.text) == (401, "oauth_problem=timestamp_refused")


def test_a_token_replaced_by_a_newer_download_is_rejected(sim: RunningSimulator, server: ServerCredentials) -> None:
    newer = issue_test_token(sim.state, server.server_id)
    response = _get_session(sim, oauth_headers(sim.base_url, server))
    assert (response.status_code, response.text) == (401, "oauth_problem=token_rejected")
    assert _get_session(sim, oauth_headers(sim.base_url, newer)).status_code == 200


def test_a_token_expires_with_the_simulators_clock(sim: RunningSimulator, server: ServerCredentials) -> None:
    with DEPTestClient(sim.base_url, server) as client:
        assert client.ok("GET", "/account")
        advanced = sim.portal.post("/portal/clock", json={"advance_seconds": 366 * 24 * 3600})
        assert advanced.status_code == 200
        # The session dies with the token, and re-authenticating says why.
        assert client.call("GET", "/account").status_code == 401
        response = client.open_session()
    assert (response.status_code, response.text) == (401, "oauth_problem=token_expired")


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (
            lambda h: h.replace('oauth_signature_method="HMAC-SHA1"', 'oauth_signature_method="PLAINTEXT"'),
            "signature_method_rejected",
        ),
        (lambda h: h.replace("oauth_nonce=", "oauth_other="), "parameter_rejected"),
        (lambda h: h + ', oauth_nonce="again"', "parameter_rejected"),
        (lambda h: ", ".join(part for part in h.split(", ") if "oauth_token=" not in part), "parameter_absent"),
        (lambda h: "Basic dXNlcjpwYXNz", "parameter_absent"),
        (lambda h: h.replace('oauth_version="1.0"', 'oauth_version="2.0"'), "version_rejected"),
        (lambda h: h[:-1], "parameter_rejected"),
    ],
)
def test_malformed_oauth_requests_are_400(sim: RunningSimulator, server: ServerCredentials, mutate, problem) -> None:  # type: ignore[no-untyped-def]
    header = oauth_headers(sim.base_url, server)["Authorization"]
    response = _get_session(sim, {"Authorization": mutate(header)})
    assert (response.status_code, response.text) == (400, f"oauth_problem={problem}")
    assert response.headers["content-type"] == CONTENT_TYPE
    assert _session_count(sim) == 0


def test_a_missing_authorization_header_is_400(sim: RunningSimulator, server: ServerCredentials) -> None:
    response = _get_session(sim, {})
    assert response.status_code == 400


def test_a_huge_authorization_header_is_refused(sim: RunningSimulator, server: ServerCredentials) -> None:
    header = oauth_headers(sim.base_url, server)["Authorization"] + ', realm="' + "x" * 5000 + '"'
    assert _get_session(sim, {"Authorization": header}).status_code == 400


def test_unaccepted_terms_and_deleted_servers_are_403_on_session(
    sim: RunningSimulator, server: ServerCredentials
) -> None:
    with sim.state.transaction() as session:
        session.scalars(select(SimOrganization)).one().terms_pending = True
    response = _get_session(sim, oauth_headers(sim.base_url, server))
    assert (response.status_code, response.text) == (403, "T_C_NOT_SIGNED")
    with sim.state.transaction() as session:
        session.scalars(select(SimOrganization)).one().terms_pending = False
        from pippin.sim.models import SimMDMServer

        row = session.get(SimMDMServer, server.server_id)
        assert row is not None
        row.access_denied = True
    response = _get_session(sim, oauth_headers(sim.base_url, server))
    assert (response.status_code, response.text) == (403, "ACCESS_DENIED")
    with sim.state.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SimNonce)) == 0


def test_user_agent_is_required(sim: RunningSimulator, server: ServerCredentials) -> None:
    response = httpx.get(f"{sim.base_url}/session", headers={"User-Agent": "", **oauth_headers(sim.base_url, server)})
    assert (response.status_code, response.text) == (400, "USER_AGENT_MISSING")
