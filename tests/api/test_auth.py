"""Every /api/v1 route answers 401 with a Bearer challenge unless it gets an active admin API token."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pippin.admin.api_tokens import revoke_api_token
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import AdminAPIToken, AuditEvent
from tests.actors import TEST_ACTOR


def _v1_calls(client: TestClient) -> list[tuple[str, str]]:
    """Every documented operation under /api/v1, path parameters filled in."""
    calls = []
    for path, operations in client.get("/api/openapi.json").json()["paths"].items():
        if path.startswith("/api/v1"):
            calls += [(method.upper(), re.sub(r"\{[^}]+\}", "acme", path)) for method in operations]
    return calls


def test_the_api_has_v1_routes_to_protect(client: TestClient) -> None:
    assert len(_v1_calls(client)) >= 5


BAD_HEADERS = {
    "missing": {},
    "empty": {"Authorization": ""},
    "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
    "bearer without token": {"Authorization": "Bearer "},
    "token with spaces": {"Authorization": "Bearer pippin_a b"},
    "unknown token": {"Authorization": "Bearer pippin_" + "x" * 43},
    "not ours": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc"},
    "huge": {"Authorization": "Bearer pippin_" + "y" * 10_000},
}


@pytest.mark.parametrize("case", list(BAD_HEADERS))
def test_every_v1_route_refuses_requests_without_a_valid_token(client: TestClient, api_token: str, case: str) -> None:
    for method, path in _v1_calls(client):
        response = client.request(method, path, headers=BAD_HEADERS[case])
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        body = response.json()
        assert body["error"] == "unauthorized" and body["message"] and body["hint"]
        assert api_token not in response.text


def test_a_revoked_token_gets_401_on_every_route(
    client: TestClient, resources: ServerResources, auth: dict[str, str]
) -> None:
    assert client.get("/api/v1/dep/tokens", headers=auth).status_code == 200
    with transaction(resources.session_factory) as session:
        revoke_api_token(session, name="test-admin", actor=TEST_ACTOR)
    for method, path in _v1_calls(client):
        response = client.request(method, path, headers=auth)
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_a_valid_token_is_let_in_and_its_use_recorded(
    client: TestClient, resources: ServerResources, auth: dict[str, str]
) -> None:
    assert client.get("/api/v1/dep/tokens", headers=auth).status_code == 200
    with transaction(resources.session_factory) as session:
        token = session.scalars(select(AdminAPIToken)).one()
        assert token.last_used_at is not None


def test_the_scheme_name_is_case_insensitive(client: TestClient, api_token: str) -> None:
    response = client.get("/api/v1/dep/tokens", headers={"Authorization": f"bearer {api_token}"})
    assert response.status_code == 200


def test_openapi_describes_the_bearer_scheme_and_every_route(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert spec["components"]["securitySchemes"]["APIToken"]["scheme"] == "bearer"
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            assert any(code.startswith("2") for code in operation["responses"]), (path, operation)
            if path.startswith("/api/v1"):
                assert "401" in operation["responses"]
    assert client.get("/api/docs").status_code == 200


#: Bodies FastAPI cannot read or validate: each must wait until the client has shown a valid token.
UNREADABLE_BODIES = {
    "broken json": ({"Content-Type": "application/json"}, b'{"name": '),
    "key twice": ({"Content-Type": "application/json"}, b'{"name": "a", "name": "b"}'),
    "wrong shape": ({"Content-Type": "application/json"}, b"[1, 2, 3]"),
    "undecodable": ({"Content-Type": "application/json"}, b"\xff\xfe{"),
    "multipart without boundary": ({"Content-Type": "multipart/form-data"}, b"--x\r\n"),
    "multipart garbage": ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x\r\nno headers\r\n"),
}


@pytest.mark.parametrize("case", list(UNREADABLE_BODIES))
@pytest.mark.parametrize("header", ["missing", "unknown token"])
def test_every_v1_route_answers_401_before_it_reads_the_body(
    client: TestClient, resources: ServerResources, case: str, header: str
) -> None:
    headers, body = UNREADABLE_BODIES[case]
    with transaction(resources.session_factory) as session:
        events = session.scalar(select(func.count()).select_from(AuditEvent))
    for method, path in _v1_calls(client):
        response = client.request(method, path, content=body, headers={**headers, **BAD_HEADERS[header]})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"] == "unauthorized"
    with transaction(resources.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == events


def test_with_a_valid_token_the_same_bodies_are_refused_for_their_shape(
    client: TestClient, auth: dict[str, str]
) -> None:
    for case, (headers, body) in UNREADABLE_BODIES.items():
        if headers["Content-Type"] == "application/json":
            response = client.post("/api/v1/profiles", content=body, headers={**headers, **auth})
            assert response.status_code == 422, (case, response.text)
