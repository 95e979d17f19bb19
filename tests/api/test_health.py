"""GET /healthz: no auth, 200 when the database answers, 503 with a reason when it does not."""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient
from starlette.applications import Starlette

from pippin import __version__
from pippin.server.resources import ServerResources
from pippin.store.db import create_db_engine, create_session_factory
from tests.servers import mounted_app


def test_healthz_answers_ok_without_auth(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__, "database": "ok"}


def test_healthz_is_503_with_a_reason_when_the_database_is_unreachable(
    app: Starlette, client: TestClient, resources: ServerResources
) -> None:
    # Port 1 on loopback refuses connections at once: a database that went away after startup.
    unreachable = create_db_engine("postgresql+psycopg://pippin:hunter2@127.0.0.1:1/gone")
    api = mounted_app(app, "")
    api.state.resources = dataclasses.replace(
        resources, engine=unreachable, session_factory=create_session_factory(unreachable)
    )
    try:
        response = client.get("/healthz")
    finally:
        api.state.resources = resources
        unreachable.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["database"] == "unreachable"
    assert body["reason"] and "hunter2" not in response.text and "pippin" not in body["reason"]
