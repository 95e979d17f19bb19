"""An API app on the test database (SQLite and PostgreSQL), a client for it, and an admin token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pippin.admin.api_tokens import create_api_token
from pippin.api.app import create_app
from pippin.api.deps import AppResources
from pippin.config import Settings
from pippin.store.db import transaction


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    app = create_app(settings)
    yield app
    # Also for tests that never start the app (and so never run the lifespan that disposes it).
    app.state.resources.engine.dispose()


@pytest.fixture
def resources(app: FastAPI) -> AppResources:
    resources: AppResources = app.state.resources
    return resources


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # Server exceptions become answers, as they do for a real client; the lifespan disposes the engine.
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def api_token(resources: AppResources) -> str:
    with transaction(resources.session_factory) as session:
        _, plaintext = create_api_token(session, name="test-admin")
    return plaintext


@pytest.fixture
def auth(api_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token}"}
