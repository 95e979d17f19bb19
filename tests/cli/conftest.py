"""What every CLI test shares. CLI tests check translation (exit codes, output, hostile flags), on SQLite and
PostgreSQL like every database test (the suite's ``database_url`` fixture)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

from pippin.cli.context import CLIInjections
from pippin.cli.main import app
from pippin.config import Settings
from pippin.dep import token as token_service
from tests.crypto.openssl_tokens import pooled_key_generator
from tests.servers import quick_password_hashes
from tests.simulator import RunningSimulator

#: What the CLI is handed instead of its production defaults: real RSA keys from the pool.
INJECTIONS = CLIInjections(generate_key=pooled_key_generator())
#: Runs ``pippin ARGS...`` in this process; ``input`` is its standard input.
Pippin = Callable[..., Result]


@pytest.fixture(autouse=True)
def _pooled_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real RSA keys from a small pool made once per run: generating one costs a fifth of a second."""
    monkeypatch.setattr(token_service, "generate_private_key", pooled_key_generator())


@pytest.fixture(autouse=True)
def _quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2: at production cost one hash takes a core for most of a second, and the hostile walks run
    `pippin admin user create` dozens of times. The CLI's tests check translation; tests/admin checks the hash
    Pippin stores at its real cost, and the real-process tests here run the production hashing."""
    quick_password_hashes(monkeypatch)


@pytest.fixture
def online(settings: Settings, sim: RunningSimulator) -> Settings:
    """The test settings with the simulator as Apple, and one retry so failures show quickly."""
    return settings.model_copy(update={"dep_base_url": sim.base_url, "dep_max_retries": 1})


@pytest.fixture
def pippin(settings: Settings) -> Pippin:
    """The CLI on this test's database, offline (files that talk to Apple define their own)."""
    assert settings.secret_key is not None
    env = {
        "PIPPIN_DATA_DIR": str(settings.data_dir),
        "PIPPIN_DATABASE_URL": str(settings.database_url),
        "PIPPIN_SECRET_KEY": settings.secret_key.get_secret_value(),
        "COLUMNS": "200",
    }

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), env=env, input=input, obj=INJECTIONS)

    return run
