"""A server on the test database (SQLite and PostgreSQL), closed after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette

from pippin.config import Settings
from tests.servers import build_server, resources_of


@pytest.fixture
def server(settings: Settings) -> Iterator[Starlette]:
    built = build_server(settings)
    yield built
    resources_of(built).engine.dispose()
