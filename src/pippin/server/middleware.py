"""The two guards every web sub-app wraps itself in: a body-size limit and a last-resort error answer.

Each sub-app installs its own pair with its own limit and its own way to answer (JSON for the API, a page for
the console, plain text for devices), so no sub-app's contract leaks into another's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Renders a refusal in the sub-app's contract: (scope, status, message) to a response.
Refuse = Callable[[Scope, int, str], Response]
#: Renders the answer to a bug in the sub-app's contract; it must say nothing about the bug itself.
RespondToBug = Callable[[Scope], Response]


class BodySizeLimit:
    """Refuses request bodies over ``max_bytes`` with 413 before they are read to the end.

    A declared ``Content-Length`` over the limit is refused without reading anything (and one that is not a
    number with 400), rendered by ``refuse``; a body sent without one (chunked) is counted as it streams, and
    the read that passes the limit raises a 413 ``HTTPException``, which the sub-app's handlers render.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, refuse: Refuse) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.refuse = refuse

    def _over_limit(self, digits: str) -> bool:
        # Compared by length first: int() refuses strings of thousands of digits, and needs none of them.
        significant = digits.lstrip("0")
        return len(significant) > len(str(self.max_bytes)) or int(significant or "0") > self.max_bytes

    @property
    def message(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        # ASCII digits only: str.isdigit() also takes "²", which int() then refuses.
        if declared is not None and not (declared.isascii() and declared.isdigit()):
            await self.refuse(scope, 400, "The Content-Length header is not a number.")(scope, receive, send)
            return
        if declared is not None and self._over_limit(declared):
            await self.refuse(scope, 413, self.message)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise StarletteHTTPException(413, detail=self.message)
            return message

        await self.app(scope, limited_receive, send)


class UnexpectedErrorMiddleware:
    """Answers any exception no handler knows with a bare 500, logging it here, once, with its traceback.

    Starlette's own last-resort handler re-raises after answering, so the server would log it again; this one
    sits inside it and ends the story. The client learns nothing but that it was Pippin's fault, in the form
    ``respond`` gives it; the log line goes to ``logger_name`` (the sub-app's logger).
    """

    def __init__(self, app: ASGIApp, *, respond: RespondToBug, logger_name: str) -> None:
        self.app = app
        self.respond = respond
        self.logger = logging.getLogger(logger_name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            fields = {"method": scope.get("method"), "path": scope.get("path")}
            self.logger.exception("unexpected error while answering a request", extra={"fields": fields})
            if response_started:
                raise
            await self.respond(scope)(scope, receive, send)
