"""The console as a sub-app of its own, mounted at ``/console`` by ``pippin.server.app.create_server``.

It shares the server's resources (database, settings, secret box, outside clients) but renders its errors as
pages: what happened and what to do, where the admin acted, never a stack trace or a JSON body; a body over
:data:`MAX_REQUEST_BYTES` is refused with a page too.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from pippin.console import admins, audit, auth, csrf, devices, overview, profiles, tokens
from pippin.console.rendering import render, templates
from pippin.errors import PippinError
from pippin.server.errors import for_operator_only, status_for
from pippin.server.middleware import BodySizeLimit, UnexpectedErrorMiddleware
from pippin.server.resources import ServerResources

logger = logging.getLogger("pippin.console")

STATIC_DIR = Path(__file__).parent / "static"
#: The largest form the console accepts: a DEP token file (at most 1,000,000 bytes) and its fields fit.
MAX_REQUEST_BYTES = 1024 * 1024
_ROUTERS = (
    auth.sign_in_router,
    auth.router,
    overview.router,
    tokens.router,
    profiles.router,
    devices.router,
    admins.router,
    audit.router,
)


def _error_page(request: Request, *, status: int, title: str, message: str, hint: str | None) -> Response:
    return render(request, "error.html", {"title": title, "message": message, "hint": hint}, status_code=status)


async def _handle_pippin_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PippinError)
    if isinstance(exc, auth.SignInRequired):
        return auth.sign_in_redirect(request)
    if isinstance(exc, csrf.CSRFRejected | auth.ReadOnlyAdmin):
        status = 403
    else:
        status = status_for(exc)
        client_text = for_operator_only(exc)
        if client_text is not None or status == 500:
            # The message names the server's paths, settings or database host; the operator reads it in the log.
            logger.error("console request failed: %s", exc, extra={"fields": {"path": request.url.path}})
        if client_text is not None and status == 503:
            return _error_page(
                request,
                status=503,
                title="Pippin cannot answer right now",
                message=client_text.message,
                hint=client_text.hint,
            )
        if status == 500:
            return _error_page(
                request,
                status=500,
                title="Something is wrong with Pippin's configuration",
                message="Pippin's server configuration is wrong or incomplete.",
                hint="An operator should read the server log, which says what to fix.",
            )
    return _error_page(request, status=status, title="That did not work", message=exc.message, hint=exc.hint)


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # Say which field, never echo the input: it may be megabytes or a script.
    fields = sorted({str(item.get("loc", ("?",))[-1])[:60] for item in exc.errors()[:10]})
    return _error_page(
        request,
        status=400,
        title="The form was not filled in as expected",
        message=f"These fields are missing, too long or not valid: {', '.join(fields)}. Nothing was changed.",
        hint="Go back, correct them and send the form again.",
    )


async def _handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return _error_page(
            request,
            status=404,
            title="Page not found",
            message="There is no console page at this address.",
            hint="Use the menu to find what you are looking for.",
        )
    if exc.status_code == 405:
        # A name of "." or ".." in an address resolves away, landing on a page that takes no form.
        return _error_page(
            request,
            status=405,
            title="That did not work",
            message="There is no form at this address, so nothing was changed.",
            hint="Send the form from its console page, or use the menu to find what you are looking for.",
        )
    detail = exc.detail if isinstance(exc.detail, str) else "The request was refused."
    return _error_page(request, status=exc.status_code, title="That did not work", message=detail, hint=None)


def _bare_page(scope: Scope, *, status: int, title: str, message: str, hint: str) -> Response:
    """An error page drawn outside the routes (no signed-in admin known, no notice to show)."""
    context = {"title": title, "message": message, "hint": hint, "signed_in": None, "notice": None}
    return templates.TemplateResponse(Request(scope), "error.html", context, status_code=status)


def _internal_error_page(scope: Scope) -> Response:
    return _bare_page(
        scope,
        status=500,
        title="Pippin failed",
        message="Pippin failed unexpectedly while answering; nothing you did caused it.",
        hint="Try again; if it keeps failing, an operator should read the server log.",
    )


def _refused_body_page(scope: Scope, status: int, message: str) -> Response:
    return _bare_page(
        scope,
        status=status,
        title="That did not work",
        message=f"{message} Nothing was changed.",
        hint="Go back and send a smaller form or file.",
    )


def create_console(resources: ServerResources) -> FastAPI:
    """The console app over ``resources``; mount it at ``/console``."""
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.state.resources = resources
    # Added first so it sits inside the unexpected-error guard.
    console.add_middleware(BodySizeLimit, max_bytes=MAX_REQUEST_BYTES, refuse=_refused_body_page)
    console.add_middleware(UnexpectedErrorMiddleware, respond=_internal_error_page, logger_name="pippin.console")
    console.add_exception_handler(PippinError, _handle_pippin_error)
    console.add_exception_handler(RequestValidationError, _handle_validation_error)
    console.add_exception_handler(StarletteHTTPException, _handle_http_error)
    console.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in _ROUTERS:
        console.include_router(router)
    return console
