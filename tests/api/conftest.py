"""The server on the test database (SQLite and PostgreSQL), a client for it, and an admin token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette

from pippin.admin.api_tokens import create_api_token
from pippin.config import Settings
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from tests.actors import TEST_ACTOR
from tests.servers import build_server, resources_of


@pytest.fixture
def server_clients() -> dict[str, Any]:
    """Outside clients to inject into the server (``create_server``'s keywords); a test parametrizes it."""
    return {}


@pytest.fixture
def app(settings: Settings, server_clients: dict[str, Any]) -> Iterator[Starlette]:
    server = build_server(settings, **server_clients)
    yield server
    # Also for tests that never start the server (and so never run the lifespan that disposes it).
    resources_of(server).engine.dispose()


@pytest.fixture
def resources(app: Starlette) -> ServerResources:
    return resources_of(app)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    # Server exceptions become answers, as they do for a real client; the lifespan disposes the engine.
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def api_token(resources: ServerResources) -> str:
    with transaction(resources.session_factory) as session:
        _, plaintext = create_api_token(session, name="test-admin", scope="read-write", actor=TEST_ACTOR)
    return plaintext


@pytest.fixture
def auth(api_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token}"}
