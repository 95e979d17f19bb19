"""Every command that touches secrets, `pippin serve` included, refuses another master key than the database's:
exit code 2, one line saying every process must share the key, nothing written. `pippin doctor` shows it."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.fernet import Fernet
from typer.testing import CliRunner, Result

from pippin.cli.main import app
from pippin.config import Settings
from tests.servers import free_port


def run(settings: Settings, *args: str, **env: str | None) -> Result:
    base: dict[str, str | None] = {
        "PIPPIN_DATA_DIR": str(settings.data_dir),
        "PIPPIN_DATABASE_URL": str(settings.database_url),
        "PIPPIN_SECRET_KEY": None,
        "PIPPIN_DEP_BASE_URL": "http://127.0.0.1:9",
        "COLUMNS": "250",
    }
    return CliRunner().invoke(app, list(args), env={**base, **env})


def test_a_second_data_directory_is_refused_and_makes_no_key(settings: Settings, tmp_path: Path) -> None:
    first = run(settings, "dep", "keypair", "acme", PIPPIN_DATA_DIR=str(tmp_path / "first"))
    assert first.exit_code == 0, first.output
    second = run(settings, "dep", "keypair", "other", PIPPIN_DATA_DIR=str(tmp_path / "second"))
    assert second.exit_code == 2, second.output
    assert "does not exist" in second.output and "same master key" in second.output
    assert "Traceback" not in second.output
    assert not (tmp_path / "second" / "master.key").exists()
    listed = run(settings, "dep", "tokens", "--json", PIPPIN_DATA_DIR=str(tmp_path / "first"))
    assert [token["name"] for token in json.loads(listed.stdout)] == ["acme"]


def test_another_secret_key_is_refused_by_every_command_that_touches_secrets(settings: Settings) -> None:
    assert settings.secret_key is not None
    key = settings.secret_key.get_secret_value()
    assert run(settings, "dep", "keypair", "acme", PIPPIN_SECRET_KEY=key).exit_code == 0
    other = Fernet.generate_key().decode()
    for command in (["dep", "keypair", "acme"], ["dep", "sync", "acme"], ["profiles", "retry-due"]):
        result = run(settings, *command, PIPPIN_SECRET_KEY=other)
        assert result.exit_code == 2, (command, result.output)
        assert "PIPPIN_SECRET_KEY" in result.output and "same master key" in result.output
        assert other not in result.output and key not in result.output


def test_serve_refuses_another_key_before_it_listens(settings: Settings) -> None:
    assert settings.secret_key is not None
    assert (
        run(settings, "dep", "keypair", "acme", PIPPIN_SECRET_KEY=settings.secret_key.get_secret_value()).exit_code == 0
    )
    result = run(settings, "serve", "--port", str(free_port()), PIPPIN_SECRET_KEY=Fernet.generate_key().decode())
    assert result.exit_code == 2, result.output
    assert "same master key" in result.output and "Traceback" not in result.output


def test_doctor_says_whether_the_key_matches_the_database(settings: Settings) -> None:
    assert settings.secret_key is not None
    key = settings.secret_key.get_secret_value()
    assert run(settings, "dep", "keypair", "acme", PIPPIN_SECRET_KEY=key).exit_code == 0

    def key_check(result: Result) -> dict[str, str]:
        checks = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
        return checks["master key in database"]

    same = run(settings, "doctor", "--json", PIPPIN_SECRET_KEY=key)
    assert key_check(same)["status"] == "ok"
    other = run(settings, "doctor", "--json", PIPPIN_SECRET_KEY=Fernet.generate_key().decode())
    assert other.exit_code == 1
    assert key_check(other)["status"] == "failed" and "does not match" in key_check(other)["detail"]
