"""The data directory is 0700 and every file Pippin keeps in it 0600, from creation; too-open modes are tightened
at start with a warning, except a master key file others could read, which is refused (tests/crypto)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from pippin.cli.main import app
from pippin.private_files import secure_data_directory
from pippin.store.db import create_db_engine


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def _everyone_could_read() -> Iterator[None]:
    """The usual umask, under which files are made 0644: what Pippin must not rely on."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_new_sqlite_database_its_wal_and_shm_are_0600_in_a_0700_folder(tmp_path: Path) -> None:
    database = tmp_path / "data" / "pippin.db"
    engine = create_db_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as connection:
            connection.execute(text("SELECT x FROM t")).all()
            files = [database, database.with_name("pippin.db-wal"), database.with_name("pippin.db-shm")]
            assert all(path.exists() for path in files)
            assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
    finally:
        engine.dispose()
    assert mode(database.parent) == 0o700


def test_the_cli_keeps_the_data_directory_private(tmp_path: Path, database_url: str) -> None:
    """On SQLite, the default database in the data directory; on PostgreSQL, the data directory holds the key."""
    data_dir = tmp_path / "data"
    url = None if database_url.startswith("sqlite") else database_url
    result = CliRunner().invoke(
        app,
        ["dep", "keypair", "acme"],
        env={"PIPPIN_DATA_DIR": str(data_dir), "PIPPIN_DATABASE_URL": url, "PIPPIN_SECRET_KEY": None},
    )
    assert result.exit_code == 0, result.output
    assert mode(data_dir) == 0o700
    names = sorted(path.name for path in data_dir.iterdir())
    expected = {"master.key", "pippin.db"} if url is None else {"master.key"}
    assert expected <= set(names)
    assert {name: mode(data_dir / name) for name in names} == {name: 0o600 for name in names}


def test_too_open_modes_are_tightened_at_start_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    for name in ("pippin.db", "pippin.db-wal", "pippin.db-shm"):
        (data_dir / name).write_bytes(b"")
        (data_dir / name).chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="pippin.files"):
        secure_data_directory(data_dir)
    assert mode(data_dir) == 0o700
    assert all(mode(data_dir / name) == 0o600 for name in ("pippin.db", "pippin.db-wal", "pippin.db-shm"))
    warned = [record for record in caplog.records if record.name == "pippin.files"]
    assert len(warned) == 4 and all("restricted" in record.getMessage() for record in warned)


def test_a_master_key_file_others_can_read_is_left_for_the_key_check_to_refuse(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "master.key").write_text("x")
    (data_dir / "master.key").chmod(0o644)
    secure_data_directory(data_dir)
    assert mode(data_dir / "master.key") == 0o644
    result = CliRunner().invoke(
        app,
        ["dep", "keypair", "acme"],
        env={"PIPPIN_DATA_DIR": str(data_dir), "PIPPIN_DATABASE_URL": None, "PIPPIN_SECRET_KEY": None},
    )
    assert result.exit_code == 2 and "can be read by other users" in result.output
