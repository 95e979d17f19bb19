"""The REST API as a sub-app of its own: /api/v1 behind admin tokens, /api/docs (from Pippin's own files), and
/healthz.

``pippin.server.app.create_server`` builds it over the server's resources and mounts it; every error it
gives, including a bug and a body over :data:`MAX_REQUEST_BYTES`, is the JSON shape of ``api/errors.py``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from pippin import __version__
from pippin.api import admins, commands, dep, devices, health, profiles, push
from pippin.api.deps import require_admin
from pippin.api.docs import OPENAPI_PATH, install_docs
from pippin.api.errors import COMMON_RESPONSES, install_error_handlers, refuse_json
from pippin.server.middleware import BodySizeLimit
from pippin.server.resources import ServerResources

#: The largest request body any route accepts; routes with files cap those files lower.
MAX_REQUEST_BYTES = 1024 * 1024

#: Routers mounted under /api/v1, all behind admin authentication: each is built with ``AdminRoute``, which
#: checks the token before the body is read (``api/deps.py``).
V1_ROUTERS: tuple[APIRouter, ...] = (
    dep.router,
    devices.router,
    commands.router,
    profiles.router,
    push.router,
    admins.router,
)


def create_api(resources: ServerResources) -> FastAPI:
    """The API over ``resources``; the server mounts it at the root, after the console and device mounts."""
    api = FastAPI(
        title="Pippin",
        summary="MDM for corporate-owned iPhones and iPads enrolled through Apple's DEP.",
        version=__version__,
        # FastAPI's docs page loads Swagger UI from a CDN; api/docs.py serves it from Pippin instead. No
        # OAuth2 redirect page either: the API takes bearer tokens, which Swagger UI sends without one.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url=OPENAPI_PATH,
    )
    api.state.resources = resources
    # Added first so it sits inside the unexpected-error guard that install_error_handlers adds.
    api.add_middleware(BodySizeLimit, max_bytes=MAX_REQUEST_BYTES, refuse=refuse_json)
    install_error_handlers(api)
    api.include_router(health.router)
    install_docs(api)
    v1 = APIRouter(prefix="/api/v1", dependencies=[Depends(require_admin)], responses=COMMON_RESPONSES)
    for router in V1_ROUTERS:
        v1.include_router(router)
    api.include_router(v1)
    return api
