"""What a route may ask for, as typed dependency aliases: a database session, the settings, the secret box,
and the authenticated admin.

The resources are built once by ``create_app`` and kept on ``app.state.resources``; nothing here is global.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pippin.admin import api_tokens as api_token_service
from pippin.api.auth import invalid_token, parse_bearer
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep import sync as sync_service
from pippin.store.db import SessionFactory, request_session
from pippin.store.models import AdminAPIToken


@dataclass(frozen=True)
class AppResources:
    """Everything an app instance holds for its whole life; background jobs get it too."""

    settings: Settings
    engine: Engine
    session_factory: SessionFactory
    secret_box: SecretBox


def run_sync_after_response(background: BackgroundTasks, resources: AppResources, *, run_id: int) -> None:
    """Carry out a claimed sync run once the answer is sent (the API's and the console's "Sync now")."""
    background.add_task(
        sync_service.run_sync,
        resources.session_factory,
        run_id=run_id,
        settings=resources.settings,
        open_dep_client=sync_service.dep_client_factory(box=resources.secret_box, settings=resources.settings),
        raise_unexpected=False,
    )


def app_resources(request: Request) -> AppResources:
    resources = request.app.state.resources
    assert isinstance(resources, AppResources), "create_app puts the resources on app.state"
    return resources


def _session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back when anything raises.

    GET and HEAD read (they never wait for a writer on SQLite); every other method writes (see store/db.py).

    Scoped to the route function (not the whole response), so a failed commit still becomes an error answer
    instead of a success the database never saw.
    """
    with request_session(app_resources(request).session_factory, method=request.method) as session:
        yield session
        session.commit()


def _settings(request: Request) -> Settings:
    return app_resources(request).settings


def _secret_box(request: Request) -> SecretBox:
    return app_resources(request).secret_box


Resources = Annotated[AppResources, Depends(app_resources)]
DBSession = Annotated[Session, Depends(_session, scope="function")]
AppSettings = Annotated[Settings, Depends(_settings)]
AppSecretBox = Annotated[SecretBox, Depends(_secret_box)]

# Declared for the OpenAPI description (the "Authorize" button); the header is parsed by parse_bearer.
_bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="APIToken",
    description="An admin API token from `pippin admin token create NAME`.",
)


def require_admin(
    request: Request,
    session: DBSession,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
) -> AdminAPIToken:
    """The API token that authenticates this request, or a 401 (missing, malformed, unknown, revoked)."""
    bearer = parse_bearer(request.headers.get("authorization"))
    token = api_token_service.authenticate_api_token(session, bearer=bearer)
    if token is None:
        raise invalid_token()
    return token


AdminAuth = Annotated[AdminAPIToken, Depends(require_admin)]
