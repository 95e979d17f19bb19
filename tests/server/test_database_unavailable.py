"""A database that stops answering after the server started: the API answers 503 with its JSON error body, the
console a 503 page, and only the server log names the database (its password masked) and the cause."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.applications import Starlette

from pippin.admin import users as user_service
from pippin.admin.api_tokens import create_api_token
from pippin.server.resources import ServerResources
from pippin.store.db import create_db_engine, create_session_factory, transaction
from tests.actors import TEST_ACTOR
from tests.servers import free_port, mounted_app, quick_password_hashes, resources_of

PASSWORD = "hunter2-never-shown"
ADMIN_PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(params=["postgresql-refuses", "sqlite-not-a-database"])
def unusable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine whose database cannot serve: a PostgreSQL port nobody listens on, or a file that is no database."""
    if request.param == "postgresql-refuses":
        engine = create_db_engine(f"postgresql://pippin:{PASSWORD}@127.0.0.1:{free_port()}/pippin")
    else:
        garbage = tmp_path / "garbage.db"
        garbage.write_bytes(b"this is not a database file" * 100)
        engine = create_db_engine(f"sqlite:///{garbage}")
    yield engine
    engine.dispose()


@pytest.fixture
def signed_in(server: Starlette, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    quick_password_hashes(monkeypatch)
    with transaction(resources_of(server).session_factory) as session:
        user_service.create_user(session, email="ann@example.com", password=ADMIN_PASSWORD, actor=TEST_ACTOR)
    with TestClient(server, raise_server_exceptions=False, follow_redirects=False) as client:
        form = client.get("/console/sign-in")
        match = _CSRF.search(form.text)
        assert match
        answer = client.post(
            "/console/sign-in",
            data={"email": "ann@example.com", "password": ADMIN_PASSWORD, "csrf_token": match.group(1)},
        )
        assert answer.status_code == 303
        yield client


def _break(server: Starlette, unusable: Engine) -> ServerResources:
    """Point every sub-app at the unusable database, as if it went away after the server started."""
    resources = resources_of(server)
    broken = dataclasses.replace(resources, engine=unusable, session_factory=create_session_factory(unusable))
    for path in ("", "/console", "/mdm"):
        mounted_app(server, path).state.resources = broken
    return resources


def test_the_api_answers_503_with_its_error_body(
    server: Starlette, signed_in: TestClient, unusable: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with transaction(resources_of(server).session_factory) as session:
        _, token = create_api_token(session, name="ci", actor=TEST_ACTOR)
    _break(server, unusable)
    with caplog.at_level(logging.WARNING, logger="pippin"):
        response = signed_in.get("/api/v1/devices", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "database_unavailable"
    assert body["message"] == "Pippin's database cannot be reached right now."
    assert "Retry later" in body["hint"]
    # The client learns nothing about the database's whereabouts; the log says all of it, password masked.
    for private in (PASSWORD, "127.0.0.1", "pippin:", "garbage.db"):
        assert private not in response.text
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "cannot be used" in logged and PASSWORD not in logged


def test_the_console_answers_a_503_page(server: Starlette, signed_in: TestClient, unusable: Engine) -> None:
    _break(server, unusable)
    response = signed_in.get("/console/devices")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "Pippin cannot answer right now" in response.text
    assert "database cannot be reached" in response.text
    for private in (PASSWORD, "127.0.0.1", "garbage.db", "Traceback"):
        assert private not in response.text


def test_healthz_still_says_503_with_the_kind_of_failure(server: Starlette, unusable: Engine) -> None:
    _break(server, unusable)
    with TestClient(server, raise_server_exceptions=False) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable" and PASSWORD not in response.text
