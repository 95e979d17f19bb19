"""Apple's conventions on the wire: the content type on every response, bare uppercase error codes, JSON bodies.

Reference section 3 ("Common conventions"): every response, success or error, carries
``Content-Type: application/json;charset=UTF8`` (sic); success is a JSON body with status 200; an error is a bare
uppercase code such as ``INVALID_CURSOR`` (not JSON-quoted). Request bodies that are not JSON, or not the shape
an endpoint expects, are ``400 MALFORMED_REQUEST_BODY``, never a framework's own validation error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

APPLE_CONTENT_TYPE = "application/json;charset=UTF8"
#: Apple takes at most 1000 serials per call; 10 MB is far above any legitimate body.
MAX_BODY_BYTES = 10 * 1024 * 1024


class AppleError(Exception):
    """An error answered the way Apple answers it: a status and a bare uppercase code (or OAuth problem text)."""

    def __init__(self, status: int, code: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.headers = dict(headers or {})


def malformed() -> AppleError:
    return AppleError(400, "MALFORMED_REQUEST_BODY")


def apple_json(payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A success response in Apple's shape and content type."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(content=body, status_code=status, headers={"Content-Type": APPLE_CONTENT_TYPE, **(headers or {})})


def apple_error(error: AppleError) -> Response:
    """An error response: the bare code as the body, Apple's content type, and any extra headers (Retry-After)."""
    return Response(
        content=error.code.encode("utf-8"),
        status_code=error.status,
        headers={"Content-Type": APPLE_CONTENT_TYPE, **error.headers},
    )


def iso(value: datetime) -> str:
    """Apple's timestamps: ISO-8601 UTC, second precision, ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_body(raw: bytes) -> Any:
    """Decode a request body as strict JSON (no NaN/Infinity), or raise ``MALFORMED_REQUEST_BODY``."""
    if len(raw) > MAX_BODY_BYTES:
        raise AppleError(413, "REQUEST_ENTITY_TOO_LARGE")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise malformed() from None


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A body that must be a JSON object (every DEP POST body is)."""
    value = parse_json_body(raw)
    if not isinstance(value, dict):
        raise malformed()
    return value


def optional_string(body: Mapping[str, Any], key: str) -> str | None:
    """A string field that may be absent or null; any other type is a malformed body."""
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise malformed()


def string_list(body: Mapping[str, Any], key: str, *, required_code: str, maximum: int) -> list[str]:
    """A list of serials: absent/empty -> ``required_code``, wrong types or more than ``maximum`` -> malformed.

    Duplicates are folded, keeping the first position, since Apple answers once per serial.
    """
    value = body.get(key)
    if value is None or value == []:
        raise AppleError(400, required_code)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise malformed()
    if len(value) > maximum:
        raise malformed()
    if any(item == "" or len(item) > 64 for item in value):
        raise malformed()
    return list(dict.fromkeys(value))


async def read_body(request: Request) -> bytes:
    """Read the request body, refusing (413) as soon as it passes ``MAX_BODY_BYTES`` instead of buffering it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise AppleError(413, "REQUEST_ENTITY_TOO_LARGE")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise AppleError(413, "REQUEST_ENTITY_TOO_LARGE")
        chunks.append(chunk)
    return b"".join(chunks)


async def _http_error(request: Request, exc: Exception) -> Response:
    """404/405 at Apple's paths look like Apple's; the simulator's own APIs (``/portal``, ``/apns``, ``/factory``) keep
    JSON."""
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith(("/portal", "/apns", "/factory")):
        return await http_exception_handler(request, exc)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "BAD_REQUEST")
    return apple_error(AppleError(exc.status_code, code))


def install_error_pages(app: FastAPI) -> None:
    """Answer unknown paths and wrong methods outside ``/portal`` as Apple does (reference section 3)."""
    app.add_exception_handler(StarletteHTTPException, _http_error)


class BrokenResponse(Response):
    """Headers promising a full body, part of it, then nothing: the server closes the connection mid-response.

    Plays a connection dropped by Apple or a proxy; the client must see a broken read, not a short success.
    """

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        partial = b'{"devices":[{"serial_number":"'
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", APPLE_CONTENT_TYPE.encode("ascii")),
                    (b"content-length", b"4096"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": partial, "more_body": True})
        # Returning without the rest makes the server close the connection (uvicorn logs it as an error).
