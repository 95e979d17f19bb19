"""The console as an application of its own, mounted at ``/console`` by ``api.app.create_app``.

It shares the API's resources (database, settings, secret box) but renders its errors as pages: what
happened and what to do, where the admin acted, never a stack trace or a JSON body.
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

from pippin.api.deps import AppResources
from pippin.api.errors import UnexpectedErrorMiddleware, status_for
from pippin.console import audit, auth, csrf, devices, overview, profiles, tokens
from pippin.console.rendering import render, templates
from pippin.errors import PippinError

logger = logging.getLogger("pippin.console")

STATIC_DIR = Path(__file__).parent / "static"
_ROUTERS = (auth.router, overview.router, tokens.router, profiles.router, devices.router, audit.router)


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
        if status == 500:
            logger.error("console request failed: %s", exc, extra={"fields": {"path": request.url.path}})
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
    detail = exc.detail if isinstance(exc.detail, str) else "The request was refused."
    return _error_page(request, status=exc.status_code, title="That did not work", message=detail, hint=None)


def _internal_error_page(scope: Scope) -> Response:
    return templates.TemplateResponse(
        Request(scope),
        "error.html",
        {
            "title": "Pippin failed",
            "message": "Pippin failed unexpectedly while answering; nothing you did caused it.",
            "hint": "Try again; if it keeps failing, an operator should read the server log.",
            "signed_in": None,
            "notice": None,
        },
        status_code=500,
    )


def create_console(resources: AppResources) -> FastAPI:
    """The console app over ``resources``; mount it at ``/console``."""
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.state.resources = resources
    console.add_middleware(UnexpectedErrorMiddleware, respond=_internal_error_page)
    console.add_exception_handler(PippinError, _handle_pippin_error)
    console.add_exception_handler(RequestValidationError, _handle_validation_error)
    console.add_exception_handler(StarletteHTTPException, _handle_http_error)
    console.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in _ROUTERS:
        console.include_router(router)
    return console
