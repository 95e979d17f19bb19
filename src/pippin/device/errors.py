"""How the device endpoints answer a failure: a status and a short plain-text body, and never 401.

Apple's MDM protocol has devices read the status, not the body (reference ``apple-mdm-protocol.md`` section 2,
"HTTP status semantics"): 400 for a request the server cannot read or authenticate, 500 for the server's own
failures, after which the device retries later. A 401 to any device request makes the device remove its MDM
profile, so an error that would be 401 elsewhere is answered 400 here; unenrolling a device on purpose is a
documented 403 body, never an error path. The body says what happened in one line, for whoever reads a
capture; it never carries a hint meant for admins, a secret or the request's own bytes.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse, Response
from starlette.types import Scope

from pippin.errors import ConfigurationError, PippinError
from pippin.server.errors import status_for
from pippin.server.middleware import UnexpectedErrorMiddleware

logger = logging.getLogger("pippin.device")

#: The statuses a device may see for an ordinary failure; anything else becomes 400 or 500.
_PLAIN_STATUSES = {400, 404, 405, 409, 410, 413, 415, 500, 502, 503}


def device_status(status: int) -> int:
    """``status`` as a device may see it: 401 (and any other 4xx a device cannot act on) becomes 400.

    424 (Apple refusing Pippin's DEP token) is the server's trouble, not the device's: 500, retry later.
    """
    if status in _PLAIN_STATUSES:
        return status
    return 500 if status >= 500 or status == 424 else 400


def plain_error(status: int, message: str) -> Response:
    """The body of every device error: one line of text."""
    return PlainTextResponse(message, status_code=device_status(status), headers={"Cache-Control": "no-store"})


def refuse_plain(_scope: Scope, status: int, message: str) -> Response:
    """A refusal of the body-size limit for a device."""
    return plain_error(status, message)


async def _handle_pippin_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PippinError)
    status = device_status(status_for(exc))
    fields = {"method": request.method, "path": request.url.path, "status": status, "error": exc.code}
    if isinstance(exc, ConfigurationError) or status >= 500:
        logger.error("device request failed: %s", exc, extra={"fields": fields})
        return plain_error(status, "The MDM server cannot answer now; retry later.")
    logger.info("device request refused: %s", exc.message, extra={"fields": fields})
    return plain_error(status, exc.message[:200])


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    logger.info("malformed device request", extra={"fields": {"method": request.method, "path": request.url.path}})
    return plain_error(400, "The request is not what this endpoint reads.")


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return plain_error(404, "There is no MDM endpoint at this address.")
    if exc.status_code == 405:
        return plain_error(405, f"{request.method[:20]} is not accepted here.")
    if exc.status_code == 413:
        return plain_error(413, exc.detail if isinstance(exc.detail, str) else "The request body is too large.")
    return plain_error(exc.status_code, "The request was refused.")


def _internal_error(_scope: Scope) -> Response:
    return plain_error(500, "The MDM server failed while answering; retry later.")


def install_error_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` the way devices expect (see the module docstring)."""
    app.add_exception_handler(PippinError, _handle_pippin_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_middleware(UnexpectedErrorMiddleware, respond=_internal_error, logger_name="pippin.device")
