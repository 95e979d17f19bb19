"""`pippin db upgrade | status`, and every other command refusing a database whose schema is behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from pippin.cli.main import app
from pippin.store.db import create_db_engine
from pippin.store.migrate import current_revision, head_revision, upgrade_to

FIRST = "0001"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pippin.db'}"


def _run(url: str, tmp_path: Path, *args: str) -> Result:
    env = {"PIPPIN_DATA_DIR": str(tmp_path / "data"), "PIPPIN_DATABASE_URL": url, "COLUMNS": "250"}
    return CliRunner().invoke(app, list(args), env=env)


def _revision(url: str) -> str | None:
    engine = create_db_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def _head() -> str:
    engine = create_db_engine("sqlite://")
    head = head_revision(engine)
    assert head is not None
    return head


def _at_first_revision(url: str) -> None:
    engine = create_db_engine(url)
    upgrade_to(engine, FIRST)
    engine.dispose()


def test_upgrade_says_from_which_revision_to_which(url: str, tmp_path: Path) -> None:
    _at_first_revision(url)
    result = _run(url, tmp_path, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"from {FIRST} to {_head()}" in result.output
    assert _revision(url) == _head()
    again = _run(url, tmp_path, "db", "upgrade")
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_other_commands_refuse_a_schema_behind_and_change_nothing(url: str, tmp_path: Path) -> None:
    _at_first_revision(url)
    result = _run(url, tmp_path, "dep", "tokens")
    assert result.exit_code == 4
    assert f"at revision {FIRST}" in result.output and "pippin db upgrade" in result.output
    assert "Traceback" not in result.output
    assert _revision(url) == FIRST


def test_a_new_database_gets_the_schema_by_itself(url: str, tmp_path: Path) -> None:
    result = _run(url, tmp_path, "dep", "tokens")
    assert result.exit_code == 0, result.output
    assert _revision(url) == _head()


def test_status_says_where_the_schema_stands(url: str, tmp_path: Path) -> None:
    _at_first_revision(url)
    behind = _run(url, tmp_path, "db", "status")
    assert behind.exit_code == 0 and f"at {FIRST}" in behind.output and "behind" in behind.output
    _run(url, tmp_path, "db", "upgrade")
    assert "(current)" in _run(url, tmp_path, "db", "status").output


def test_a_schema_from_a_newer_release_is_refused(url: str, tmp_path: Path) -> None:
    engine = create_db_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        connection.exec_driver_sql("INSERT INTO alembic_version VALUES ('9999')")
    engine.dispose()
    result = _run(url, tmp_path, "dep", "tokens")
    assert result.exit_code == 4 and "newer release" in result.output
