"""What a route of any sub-app may ask for, as typed dependency aliases: the resources, a database session,
the settings and the secret box.

``create_server`` puts one :class:`ServerResources` on the state of each sub-app it mounts; a sub-app reads
its own (``request.app`` is the sub-app answering), so nothing here is global.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.server.resources import ServerResources
from pippin.store.db import request_session


def server_resources(request: Request) -> ServerResources:
    resources = request.app.state.resources
    assert isinstance(resources, ServerResources), "create_server puts the resources on every sub-app's state"
    return resources


def _session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back when anything raises.

    GET and HEAD read (they never wait for a writer on SQLite); every other method writes (see store/db.py).

    Scoped to the route function (not the whole response), so a failed commit still becomes an error answer
    instead of a success the database never saw.
    """
    with request_session(server_resources(request).session_factory, method=request.method) as session:
        yield session
        session.commit()


def _settings(request: Request) -> Settings:
    return server_resources(request).settings


def _secret_box(request: Request) -> SecretBox:
    return server_resources(request).secret_box


Resources = Annotated[ServerResources, Depends(server_resources)]
DBSession = Annotated[Session, Depends(_session, scope="function")]
AppSettings = Annotated[Settings, Depends(_settings)]
AppSecretBox = Annotated[SecretBox, Depends(_secret_box)]
