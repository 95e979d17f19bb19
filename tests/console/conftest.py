"""The console on a SQLite database (translation tests), admins of both roles, and signed-in clients."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pippin.admin import users as user_service
from pippin.api.app import create_app
from pippin.api.deps import AppResources
from pippin.config import Settings
from pippin.store.db import transaction

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

SignIn = Callable[[str], TestClient]


@pytest.fixture(autouse=True)
def _quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its cheapest: these tests check the console, not the hash's cost (tests/admin does)."""
    monkeypatch.setattr(user_service, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has a form with a CSRF token"
    return match.group(1)


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only (overrides the conftest fixture that also runs PostgreSQL): these tests check translation."""
    path = tmp_path / "pippin.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    app = create_app(settings)
    yield app
    app.state.resources.engine.dispose()


@pytest.fixture
def resources(app: FastAPI) -> AppResources:
    resources: AppResources = app.state.resources
    return resources


@pytest.fixture
def admins(resources: AppResources) -> None:
    with transaction(resources.session_factory) as session:
        user_service.create_user(session, email="ann@example.com", password=PASSWORD)
        user_service.create_user(session, email="rita@example.com", password=PASSWORD, role="read-only")


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client


def sign_in_with(client: TestClient, email: str, password: str = PASSWORD) -> object:
    form = client.get("/console/sign-in")
    return client.post(
        "/console/sign-in", data={"email": email, "password": password, "csrf_token": csrf_of(form.text)}
    )


@pytest.fixture
def sign_in(app: FastAPI, admins: None) -> Iterator[SignIn]:
    clients: list[TestClient] = []

    def signed_in(email: str) -> TestClient:
        client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
        client.__enter__()
        clients.append(client)
        answer = sign_in_with(client, email)
        assert getattr(answer, "status_code", None) == 303
        return client

    yield signed_in
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def ann(sign_in: SignIn) -> TestClient:
    return sign_in("ann@example.com")


@pytest.fixture
def rita(sign_in: SignIn) -> TestClient:
    return sign_in("rita@example.com")
