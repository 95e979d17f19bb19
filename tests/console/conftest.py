"""The server on a SQLite database (the console's tests check translation), admins of both roles, and
signed-in clients."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette

from pippin.admin import users as user_service
from pippin.config import Settings
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from tests.actors import TEST_ACTOR
from tests.servers import build_server, quick_password_hashes, resources_of

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

SignIn = Callable[[str], TestClient]


@pytest.fixture(autouse=True)
def _quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_password_hashes(monkeypatch)


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has a form with a CSRF token"
    return match.group(1)


@pytest.fixture
def app(settings: Settings) -> Iterator[Starlette]:
    server = build_server(settings)
    yield server
    resources_of(server).engine.dispose()


@pytest.fixture
def resources(app: Starlette) -> ServerResources:
    return resources_of(app)


@pytest.fixture
def admins(resources: ServerResources) -> None:
    with transaction(resources.session_factory) as session:
        user_service.create_user(session, email="ann@example.com", password=PASSWORD, actor=TEST_ACTOR)
        user_service.create_user(
            session, email="rita@example.com", password=PASSWORD, role="read-only", actor=TEST_ACTOR
        )


@pytest.fixture
def anonymous(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client


def sign_in_with(client: TestClient, email: str, password: str = PASSWORD) -> object:
    form = client.get("/console/sign-in")
    return client.post(
        "/console/sign-in", data={"email": email, "password": password, "csrf_token": csrf_of(form.text)}
    )


@pytest.fixture
def sign_in(app: Starlette, admins: None) -> Iterator[SignIn]:
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
