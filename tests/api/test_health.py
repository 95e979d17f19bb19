"""GET /healthz: no auth, 200 when the database answers, 503 with a reason when it does not."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pippin import __version__
from pippin.api.deps import AppResources
from pippin.store.db import create_db_engine, create_session_factory


def test_healthz_answers_ok_without_auth(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__, "database": "ok"}


def test_healthz_is_503_with_a_reason_when_the_database_is_unreachable(
    client: TestClient, resources: AppResources
) -> None:
    # Port 1 on loopback refuses connections at once: a database that went away after startup.
    unreachable = create_db_engine("postgresql+psycopg://pippin:hunter2@127.0.0.1:1/gone")
    client.app.state.resources = AppResources(  # type: ignore[attr-defined]
        settings=resources.settings,
        engine=unreachable,
        session_factory=create_session_factory(unreachable),
        secret_box=resources.secret_box,
    )
    try:
        response = client.get("/healthz")
    finally:
        client.app.state.resources = resources  # type: ignore[attr-defined]
        unreachable.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["database"] == "unreachable"
    assert body["reason"] and "hunter2" not in response.text and "pippin" not in body["reason"]
