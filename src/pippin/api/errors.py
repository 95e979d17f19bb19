"""Every failure of an API request becomes one JSON shape and one status: the server's table of statuses
(``server/errors.py``, shared with the console and the device endpoints) plus the API's own 401.

``{"error": code, "message": what happened, "hint": what to do}``, plus ``token_status``/``apple_code`` for
Apple's refusals and ``details`` for malformed requests. The statuses (documented in the README):

- 400 ``InvalidInput``: Pippin read the request and refused its content; nothing changed.
- 401: no, a malformed, an unknown or a revoked API token (the admin API answers 401 for nothing else).
- 403: a read-only API token sent a request that may change something (any method but GET, HEAD, OPTIONS).
- 404 ``NotFound`` (and unknown routes), 409 ``Conflict``, 413 a body or file over its size limit.
- 422: the request does not have the documented shape (missing field, wrong type, undecodable JSON).
- 424 ``DEPAuthFailure``: Apple refuses the DEP token itself; ``token_status`` says why, the hint how to fix it.
- 502 ``DEPError``: Apple could not be reached or answered wrongly; ``Retry-After`` when Apple named a delay.
- 503 ``Unavailable``: something else Pippin needs (the database) is unreachable; retry later (an unreachable
  database with a message of its own: the log names the database and the cause).
- 500: a configuration problem (with a safe message; the log has the detail) or a bug (``internal_error``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from pippin.api.auth import AuthenticationRequired, ReadOnlyToken
from pippin.dep.errors import DEPAuthFailure, DEPError
from pippin.errors import PippinError
from pippin.server import errors as server_errors
from pippin.server.middleware import UnexpectedErrorMiddleware

logger = logging.getLogger("pippin.api")

_MAX_DETAILS = 10
_MAX_DETAIL_CHARS = 200


class ErrorRead(BaseModel):
    """The body of every error answer."""

    error: str = Field(description="Stable machine-readable code, e.g. `not_found` or `dep_token_rejected`.")
    message: str = Field(description="What happened, for people.")
    hint: str | None = Field(default=None, description="What to do next.")
    token_status: str | None = Field(default=None, description="For Apple's refusals of a DEP token: its status.")
    apple_code: str | None = Field(default=None, description="Apple's own error code, when Apple sent one.")
    details: list[dict[str, str]] | None = Field(default=None, description="For malformed requests: each problem.")


# Responses every /api/v1 route may give, for the OpenAPI description.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorRead, "description": "No valid API token."},
    403: {"model": ErrorRead, "description": "A read-only API token asked to change something."},
    413: {"model": ErrorRead, "description": "The request body is too large."},
    422: {"model": ErrorRead, "description": "The request does not have the documented shape."},
}
DEP_RESPONSES: dict[int | str, dict[str, Any]] = {
    424: {"model": ErrorRead, "description": "Apple refuses the DEP token; `token_status` says why."},
    502: {"model": ErrorRead, "description": "Apple could not be reached or answered wrongly."},
}


def status_for(error: PippinError) -> int:
    """The HTTP status of ``error``: 401 for a missing or invalid API token, 403 for a read-only token's change,
    else the server's table."""
    if isinstance(error, AuthenticationRequired):
        return 401
    if isinstance(error, ReadOnlyToken):
        return 403
    return server_errors.status_for(error)


def error_response(status: int, body: ErrorRead, *, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers)


def refuse_json(_scope: Scope, status: int, message: str) -> Response:
    """A refusal of the body-size limit in the API's shape."""
    code = "too_large" if status == 413 else "invalid_request"
    return error_response(status, ErrorRead(error=code, message=message))


def _clip(text: str, limit: int = 1000) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _retry_after(error: PippinError) -> str | None:
    seconds = getattr(error, "retry_after", None)
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and math.isfinite(seconds) and seconds >= 0:
        return str(math.ceil(seconds))
    return None


def _pippin_error_response(request: Request, error: PippinError) -> JSONResponse:
    status = status_for(error)
    fields = {"method": request.method, "path": request.url.path, "status": status, "error": error.code}
    client_text = server_errors.for_operator_only(error)
    if client_text is not None:
        # The message names the server's paths, settings or database host; the operator reads it in the log.
        logger.error("request failed: %s", error, extra={"fields": fields})
        body = ErrorRead(error=error.code, message=client_text.message, hint=client_text.hint)
        return error_response(status, body)
    log = logger.warning if status >= 500 or isinstance(error, DEPError) else logger.info
    log("request refused: %s", error.message, extra={"fields": fields})
    # A message that quotes the caller's input stays readable however long the input was.
    body = ErrorRead(error=error.code, message=_clip(error.message), hint=error.hint and _clip(error.hint))
    if isinstance(error, DEPError):
        body.apple_code = error.apple_code
    if isinstance(error, DEPAuthFailure):
        body.token_status = str(error.token_status)
    headers: dict[str, str] = {}
    if isinstance(error, AuthenticationRequired):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"' if error.invalid_token else "Bearer"
    retry_after = _retry_after(error)
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return error_response(status, body, headers=headers or None)


async def _handle_pippin_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PippinError)
    return _pippin_error_response(request, exc)


def _location(loc: Any) -> str:
    return ".".join(str(part) for part in loc) if isinstance(loc, list | tuple) else str(loc)


async def _handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only where and what, never the input: it may be a secret or megabytes of garbage.
    details = [
        {"location": _location(item.get("loc", ()))[:_MAX_DETAIL_CHARS], "message": str(item.get("msg"))[:200]}
        for item in exc.errors()[:_MAX_DETAILS]
    ]
    summary = "; ".join(f"{item['location']}: {item['message']}" for item in details)
    body = ErrorRead(
        error="invalid_request",
        message=f"The request does not have the expected shape: {summary}.",
        hint="See /api/docs for each route's parameters and body.",
        details=details,
    )
    logger.info("malformed request", extra={"fields": {"method": request.method, "path": request.url.path}})
    return error_response(422, body)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}


async def _handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # The framework's "error parsing the body" (undecodable bytes, broken multipart) is a malformed request.
        body = ErrorRead(
            error="invalid_request",
            message="The request body could not be parsed.",
            hint="Send the content type and encoding documented at /api/docs.",
        )
        return error_response(422, body)
    message = exc.detail if isinstance(exc.detail, str) else "The request was refused."
    if exc.status_code == 404 and message == "Not Found":
        message = f"There is nothing at {request.method} {request.url.path[:200]}."
    hint = "See /api/docs for the routes." if exc.status_code in (404, 405) else None
    body = ErrorRead(error=_HTTP_CODES.get(exc.status_code, "http_error"), message=message, hint=hint)
    return error_response(exc.status_code, body, headers=dict(exc.headers) if exc.headers else None)


def _internal_error_json(_scope: Scope) -> Response:
    body = ErrorRead(
        error="internal_error",
        message="Pippin failed unexpectedly while answering this request.",
        hint="This is a bug in Pippin; the server log has the details. Retrying may work.",
    )
    return error_response(500, body)


def install_error_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` in Pippin's JSON shape."""
    app.add_exception_handler(PippinError, _handle_pippin_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_middleware(UnexpectedErrorMiddleware, respond=_internal_error_json, logger_name="pippin.api")
