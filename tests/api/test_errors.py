"""api/errors.py: each error class becomes its documented status and the one JSON shape; bugs leak nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.applications import Starlette

from pippin.admin.api_tokens import create_api_token, list_api_tokens
from pippin.api.auth import AuthenticationRequired
from pippin.dep.errors import (
    AccessDenied,
    CursorInvalid,
    DEPRequestRejected,
    DEPResponseInvalid,
    DEPUnavailable,
    TermsNotSigned,
    TokenExpired,
    TokenRejected,
)
from pippin.errors import ConfigurationError, Conflict, InvalidInput, NotFound, PippinError, Unavailable
from pippin.server.deps import DBSession
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from tests.actors import TEST_ACTOR
from tests.servers import mounted_app

SECRET = "s3cr3t-consumer-value"

RAISED: dict[str, tuple[Exception, int, str]] = {
    "invalid": (InvalidInput("bad value", hint="fix it"), 400, "invalid_input"),
    "not-found": (NotFound("no such thing", hint="list them"), 404, "not_found"),
    "conflict": (Conflict("taken", hint="pick another"), 409, "conflict"),
    "unavailable": (Unavailable("database down", hint="retry"), 503, "unavailable"),
    "terms": (TermsNotSigned(apple_code="T_C_NOT_SIGNED", status=403), 424, "dep_terms_not_signed"),
    "access-denied": (AccessDenied(apple_code="ACCESS_DENIED", status=403), 424, "dep_access_denied"),
    "rejected": (TokenRejected(status=401), 424, "dep_token_rejected"),
    "expired": (TokenExpired(), 424, "dep_token_expired"),
    "dep-unavailable": (DEPUnavailable(status=503, retry_after=29.2), 502, "dep_unavailable"),
    "dep-rejected": (DEPRequestRejected(apple_code="MALFORMED_REQUEST_BODY", status=400), 400, "dep_request_rejected"),
    "dep-cursor": (CursorInvalid(apple_code="INVALID_CURSOR", status=400), 502, "dep_cursor_invalid"),
    "dep-garbled": (DEPResponseInvalid(), 502, "dep_response_invalid"),
    "config": (ConfigurationError(f"key file /srv/{SECRET} unreadable", hint=f"chmod /srv/{SECRET}"), 500, ""),
    "plain": (PippinError("something on purpose"), 500, "error"),
    "auth": (AuthenticationRequired("no token"), 401, "unauthorized"),
}


class EchoCreate(BaseModel):
    count: int
    label: str


@pytest.fixture
def probe_client(app: Starlette) -> Iterator[TestClient]:
    """The server, its API with a few routes outside /api/v1 that fail on demand."""
    probes = APIRouter(prefix="/probe")

    @probes.get("/raise/{case}")
    def raise_case(case: str) -> None:
        raise RAISED[case][0]

    @probes.get("/bug")
    def bug() -> None:
        raise RuntimeError(f"database password is {SECRET}")

    @probes.post("/echo")
    def echo(body: EchoCreate) -> EchoCreate:
        return body

    @probes.post("/write-then-fail")
    def write_then_fail(session: DBSession) -> None:
        create_api_token(session, name="half-written", actor=TEST_ACTOR)
        raise Conflict("changed my mind")

    @probes.post("/write")
    def write(session: DBSession) -> None:
        create_api_token(session, name="written", actor=TEST_ACTOR)

    mounted_app(app, "").include_router(probes)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("case", list(RAISED))
def test_each_error_class_has_its_status_and_shape(probe_client: TestClient, case: str) -> None:
    error, status, code = RAISED[case]
    response = probe_client.get(f"/probe/raise/{case}")
    assert response.status_code == status
    body = response.json()
    assert set(body) <= {"error", "message", "hint", "token_status", "apple_code", "details"}
    assert body["message"] and SECRET not in response.text
    if code:
        assert body["error"] == code
    if isinstance(error, PippinError) and status != 500:
        assert body["message"] == error.message and body.get("hint") == error.hint


def test_apple_refusing_the_token_carries_the_token_status(probe_client: TestClient) -> None:
    body = probe_client.get("/probe/raise/terms").json()
    assert body["token_status"] == "terms_not_signed" and body["apple_code"] == "T_C_NOT_SIGNED"
    assert "accept" in body["hint"]


def test_apple_unavailable_says_when_to_retry(probe_client: TestClient) -> None:
    response = probe_client.get("/probe/raise/dep-unavailable")
    assert response.headers["Retry-After"] == "30"


def test_a_configuration_error_answers_a_safe_message_and_logs_the_detail(
    probe_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="pippin"):
        response = probe_client.get("/probe/raise/config")
    assert response.json()["error"] == "configuration_error" and SECRET not in response.text
    assert any(SECRET in record.getMessage() for record in caplog.records)


def test_a_bug_is_a_bare_500_logged_once_with_its_traceback(
    probe_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = probe_client.get("/probe/bug")
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert SECRET not in response.text and "Traceback" not in response.text and "RuntimeError" not in response.text
    logged = [record for record in caplog.records if record.exc_info]
    assert len(logged) == 1 and logged[0].name == "pippin.api"


def test_malformed_bodies_are_422_in_the_same_shape_without_echoing_input(probe_client: TestClient) -> None:
    response = probe_client.post("/probe/echo", json={"count": "not-a-number-" + SECRET})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request" and SECRET not in response.text
    assert {detail["location"] for detail in body["details"]} == {"body.count", "body.label"}
    garbage = probe_client.post("/probe/echo", content=b"\xff\x00{", headers={"Content-Type": "application/json"})
    assert garbage.status_code == 422 and garbage.json()["error"] == "invalid_request"


def test_unknown_routes_and_methods_answer_in_the_same_shape(probe_client: TestClient) -> None:
    missing = probe_client.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong_method = probe_client.delete("/healthz")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"


def test_bodies_over_the_limit_are_refused_before_they_are_read(probe_client: TestClient) -> None:
    declared = probe_client.post("/probe/echo", content=b"x" * (2 * 1024 * 1024))
    assert declared.status_code == 413 and declared.json()["error"] == "too_large"

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"y" * 65536

    streamed = probe_client.post("/probe/echo", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["error"] == "too_large"
    bad_length = probe_client.post("/probe/echo", content=b"{}", headers={"Content-Length": "abc"})
    assert bad_length.status_code in (400, 413)


def test_a_route_that_fails_changes_nothing_and_one_that_returns_commits(
    probe_client: TestClient, resources: ServerResources
) -> None:
    assert probe_client.post("/probe/write-then-fail").status_code == 409
    assert probe_client.post("/probe/write").status_code == 200
    with transaction(resources.session_factory) as session:
        assert [token.name for token in list_api_tokens(session)] == ["written"]
