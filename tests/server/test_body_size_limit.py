"""server/middleware.py's BodySizeLimit: a Content-Length that is not ASCII digits is a 400, one past the limit a
413 without reading a byte, however many digits it has."""

from __future__ import annotations

import asyncio

import pytest
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from pippin.server.middleware import BodySizeLimit


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("read")(scope, receive, send)


def _refuse(_scope: Scope, status: int, message: str) -> Response:
    return PlainTextResponse(message, status_code=status)


def _status_for(content_length: bytes) -> int:
    limit = BodySizeLimit(_app, max_bytes=1000, refuse=_refuse)
    scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", content_length)]}
    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("a refused body is never read")

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(limit(scope, receive, send))
    status: int = sent[0]["status"]
    return status


@pytest.mark.parametrize("content_length", ["²".encode("latin-1"), "\u0661".encode(), b"+5", b" 5", b"5.0", b"-1", b""])
def test_a_content_length_that_is_not_ascii_digits_is_a_400(content_length: bytes) -> None:
    assert _status_for(content_length) == 400


@pytest.mark.parametrize("content_length", [b"1001", b"9" * 5000, b"0" * 30 + b"1001"])
def test_a_content_length_past_the_limit_is_a_413(content_length: bytes) -> None:
    assert _status_for(content_length) == 413


@pytest.mark.parametrize("content_length", [b"0", b"1000", b"0" * 30 + b"999"])
def test_a_content_length_within_the_limit_is_let_through(content_length: bytes) -> None:
    assert _status_for(content_length) == 200
