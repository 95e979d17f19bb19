"""The device endpoints' error contract (/mdm): plain text, the statuses devices act on, and never 401.

There are no device routes yet, so a few probe routes are added to the device sub-app to fail on demand;
everything else (unknown paths, body limits) is the sub-app as the server mounts it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, Body
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from pippin.api.auth import AuthenticationRequired
from pippin.dep.errors import DEPUnavailable, TokenRejected
from pippin.device.app import MAX_REQUEST_BYTES
from pippin.errors import ConfigurationError, Conflict, InvalidInput, NotFound, Unavailable
from tests.servers import mounted_app

SECRET = "s3cr3t-device-value"

RAISED: dict[str, tuple[Exception, int]] = {
    "invalid": (InvalidInput("the plist does not parse"), 400),
    "not-found": (NotFound("no such enrollment"), 404),
    "conflict": (Conflict("command already answered"), 409),
    "unavailable": (Unavailable("database down"), 503),
    "apple-down": (DEPUnavailable(status=503), 502),
    # 401 in the admin API; here an error class the server's table does not know, so Pippin's own fault.
    "api-unauthenticated": (AuthenticationRequired("no valid signature"), 500),
    "http-401": (HTTPException(401, detail="Unauthorized"), 400),
    "http-403": (HTTPException(403, detail="Forbidden"), 400),
    # Apple refusing Pippin's own token is the server's trouble: retry later.
    "token-refused": (TokenRejected(status=401), 500),
    "config": (ConfigurationError(f"key file /srv/{SECRET} unreadable"), 500),
}


@pytest.fixture
def device_client(server: Starlette) -> Iterator[TestClient]:
    probes = APIRouter(prefix="/probe")

    @probes.put("/raise/{case}")
    def raise_case(case: str) -> None:
        raise RAISED[case][0]

    @probes.put("/bug")
    def bug() -> None:
        raise RuntimeError(f"the database password is {SECRET}")

    @probes.put("/read")
    def read(body: bytes = Body(media_type="application/x-apple-aspen-mdm")) -> int:
        return len(body)

    @probes.put("/count")
    def count(count: int) -> int:
        return count

    mounted_app(server, "/mdm").include_router(probes)
    with TestClient(server, raise_server_exceptions=False) as client:
        yield client


def _is_plain(answer: object) -> bool:
    headers = getattr(answer, "headers", {})
    return str(headers.get("content-type", "")).startswith("text/plain")


@pytest.mark.parametrize("case", list(RAISED))
def test_each_error_is_a_plain_text_status_a_device_acts_on(device_client: TestClient, case: str) -> None:
    _, status = RAISED[case]
    answer = device_client.put(f"/mdm/probe/raise/{case}")
    assert answer.status_code == status and answer.status_code != 401
    assert _is_plain(answer) and answer.text and SECRET not in answer.text


def test_an_unknown_path_or_method_is_plain_text(device_client: TestClient) -> None:
    missing = device_client.put("/mdm/nowhere", content=b"<plist/>")
    assert missing.status_code == 404 and _is_plain(missing)
    wrong = device_client.get("/mdm/probe/read")
    assert wrong.status_code == 405 and _is_plain(wrong)


def test_a_malformed_request_is_400_not_422(device_client: TestClient) -> None:
    answer = device_client.put("/mdm/probe/count", params={"count": "many"})
    assert answer.status_code == 400 and _is_plain(answer) and "many" not in answer.text


def test_a_body_within_the_limit_is_read(device_client: TestClient) -> None:
    answer = device_client.put("/mdm/probe/read", content=b"x" * 1024)
    assert answer.status_code == 200 and answer.json() == 1024


def test_a_body_over_the_limit_is_refused_before_it_is_read(device_client: TestClient) -> None:
    declared = device_client.put("/mdm/probe/read", content=b"x" * (MAX_REQUEST_BYTES + 1))
    assert declared.status_code == 413 and _is_plain(declared)

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_REQUEST_BYTES // 65536 + 2):
            yield b"y" * 65536

    streamed = device_client.put("/mdm/probe/read", content=chunks())
    assert streamed.status_code == 413 and _is_plain(streamed)
    not_a_number = device_client.put("/mdm/probe/read", content=b"x", headers={"Content-Length": "lots"})
    assert not_a_number.status_code == 400 and _is_plain(not_a_number)


def test_a_bug_is_a_bare_500_logged_once(device_client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        answer = device_client.put("/mdm/probe/bug")
    assert answer.status_code == 500 and _is_plain(answer)
    assert SECRET not in answer.text and "Traceback" not in answer.text and "RuntimeError" not in answer.text
    logged = [record for record in caplog.records if record.exc_info]
    assert len(logged) == 1 and logged[0].name == "pippin.device"


def test_a_configuration_error_tells_the_device_nothing_and_the_log_everything(
    device_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="pippin"):
        answer = device_client.put("/mdm/probe/raise/config")
    assert answer.status_code == 500 and SECRET not in answer.text
    assert any(SECRET in record.getMessage() for record in caplog.records)
