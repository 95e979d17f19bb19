"""What every CLI test shares. CLI tests check translation (exit codes, output, hostile flags); the services
beneath them are tested on both databases elsewhere, so here SQLite alone is enough."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pippin.config import Settings
from pippin.dep import token as token_service
from tests.crypto.openssl_tokens import pooled_key_generator
from tests.simulator import RunningSimulator


@pytest.fixture(autouse=True)
def _pooled_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real RSA keys from a small pool made once per run: generating one costs a fifth of a second."""
    monkeypatch.setattr(token_service, "generate_private_key", pooled_key_generator())


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only (overrides the suite's fixture that also runs PostgreSQL)."""
    path = tmp_path / "pippin.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def online(settings: Settings, sim: RunningSimulator) -> Settings:
    """The test settings with the simulator as Apple, and one retry so failures show quickly."""
    return settings.model_copy(update={"dep_base_url": sim.base_url, "dep_max_retries": 1})
