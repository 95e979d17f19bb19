"""The API application: built once per process by :func:`create_app`, with nothing global at import time.

``create_app`` opens the database (migrating it to the newest schema), the secret box and the routers;
the lifespan starts and stops registered background jobs (the scheduled DEP syncs of `pippin serve`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pippin import __version__
from pippin.api import dep, devices, health, profiles
from pippin.api.deps import AppResources, require_admin
from pippin.api.errors import COMMON_RESPONSES, ErrorRead, error_response, install_error_handlers
from pippin.config import Settings
from pippin.console.app import create_console
from pippin.crypto.secrets import SecretBox
from pippin.store.db import create_db_engine, create_session_factory
from pippin.store.migrate import upgrade_to_head

#: The largest request body any route accepts; routes with files cap those files lower.
MAX_REQUEST_BYTES = 1024 * 1024

#: A job that runs beside the API for the app's lifetime: entering the context starts it, leaving stops it.
BackgroundJob = Callable[[AppResources], AbstractContextManager[object]]

#: Routers mounted under /api/v1, all behind admin authentication.
V1_ROUTERS: tuple[APIRouter, ...] = (dep.router, devices.router, profiles.router)


class BodySizeLimit:
    """Refuses request bodies over ``max_bytes`` with 413 before they are read to the end.

    A declared ``Content-Length`` over the limit is refused without reading anything; a body sent without
    one (chunked) is counted as it streams and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> StarletteHTTPException:
        return StarletteHTTPException(413, detail=f"The request body is larger than {self.max_bytes} bytes.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            body = ErrorRead(error="too_large", message=str(self._too_large().detail))
            if not declared.isdigit():
                body = ErrorRead(error="invalid_request", message="The Content-Length header is not a number.")
            await error_response(413 if declared.isdigit() else 400, body)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    resources: AppResources = app.state.resources
    try:
        with ExitStack() as running_jobs:
            for job in app.state.background_jobs:
                running_jobs.enter_context(job(resources))
            yield
    finally:
        if app.state.owns_engine:
            resources.engine.dispose()


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    background_jobs: Sequence[BackgroundJob] = (),
) -> FastAPI:
    """The API for ``settings``; its database is ``engine`` if given (the caller then disposes it).

    Background jobs may also be appended to ``app.state.background_jobs`` before the app starts.
    """
    owns_engine = engine is None
    if engine is None:
        # hide_parameters: a failed statement's message would otherwise carry its values into the log.
        engine = create_db_engine(settings.resolved_database_url, hide_parameters=True)
    upgrade_to_head(engine)
    resources = AppResources(
        settings=settings,
        engine=engine,
        session_factory=create_session_factory(engine),
        secret_box=SecretBox.from_settings(settings),
    )
    app = FastAPI(
        title="Pippin",
        summary="MDM for corporate-owned iPhones and iPads enrolled through Apple's DEP.",
        version=__version__,
        docs_url="/api/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url="/api/docs/oauth2-redirect",
        openapi_url="/api/openapi.json",
        lifespan=_lifespan,
    )
    app.state.resources = resources
    app.state.owns_engine = owns_engine
    app.state.background_jobs = list(background_jobs)
    # Added first so it sits inside the unexpected-error guard that install_error_handlers adds.
    app.add_middleware(BodySizeLimit, max_bytes=MAX_REQUEST_BYTES)
    install_error_handlers(app)
    app.include_router(health.router)
    v1 = APIRouter(prefix="/api/v1", dependencies=[Depends(require_admin)], responses=COMMON_RESPONSES)
    for router in V1_ROUTERS:
        v1.include_router(router)
    app.include_router(v1)
    # The admin console: server-rendered pages over the same services, at /console (and / leads there).
    app.mount("/console", create_console(resources))
    app.add_api_route("/", lambda: RedirectResponse("/console/"), include_in_schema=False)
    return app
