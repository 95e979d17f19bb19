"""`pippin secrets rotate` from a shell: the key file swapped so that a crash at any point leaves a key that opens
the database, PIPPIN_SECRET_KEY's new key taken from standard input, and the old key refused afterwards."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet
from typer.testing import CliRunner, Result

from pippin.admin.key_rotation import rotate_master_key
from pippin.admin.master_key import find_check, open_secret_box
from pippin.cli.main import app
from pippin.config import Settings
from pippin.crypto.secrets import SIGNING_PURPOSES, SecretBox, parse_master_key, replace_key_file
from pippin.store.db import create_db_engine, create_session_factory, read_transaction, transaction
from tests.actors import TEST_ACTOR


def run(settings: Settings, *args: str, input: str | None = None, **env: str | None) -> Result:
    base: dict[str, str | None] = {
        "PIPPIN_DATA_DIR": str(settings.data_dir),
        "PIPPIN_DATABASE_URL": str(settings.database_url),
        "PIPPIN_SECRET_KEY": None,
        "PIPPIN_DEP_BASE_URL": "http://127.0.0.1:9",
        "COLUMNS": "250",
    }
    return CliRunner().invoke(app, list(args), env={**base, **env}, input=input)


def key_files(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(folder.iterdir()) if path.name.startswith("master.key")}


def opens_the_database(settings: Settings, key_file: Path) -> bool:
    engine = create_db_engine(str(settings.database_url))
    try:
        with read_transaction(create_session_factory(engine)) as session:
            check = find_check(session)
            key = parse_master_key(key_file.read_text(), source="test")
            return check is not None and SecretBox(key).matches(check.check_value)
    finally:
        engine.dispose()


def test_rotation_swaps_the_key_file_and_keeps_the_old_one_aside(settings: Settings, tmp_path: Path) -> None:
    assert run(settings, "dep", "keypair", "acme").exit_code == 0
    folder = settings.data_dir
    old = (folder / "master.key").read_text()
    result = run(settings, "secrets", "rotate")
    assert result.exit_code == 0, result.output
    assert f"Sealed {1 + len(SIGNING_PURPOSES)} secrets" in result.stdout and "master.key.old" in result.output
    files = key_files(folder)
    assert set(files) == {"master.key", "master.key.old"} and files["master.key.old"] == old != files["master.key"]
    assert {name: stat.S_IMODE(os.stat(folder / name).st_mode) for name in files} == dict.fromkeys(files, 0o600)
    assert opens_the_database(settings, folder / "master.key")
    assert run(settings, "dep", "keypair", "acme").exit_code == 0
    # A data directory still holding the old key is refused.
    stale = tmp_path / "stale"
    stale.mkdir(mode=0o700)
    (stale / "master.key").write_text(old)
    (stale / "master.key").chmod(0o600)
    refused = run(settings, "dep", "keypair", "acme", PIPPIN_DATA_DIR=str(stale))
    assert refused.exit_code == 2 and "same master key" in refused.output


def test_a_crash_after_the_commit_is_finished_by_the_next_process(settings: Settings) -> None:
    assert run(settings, "dep", "keypair", "acme").exit_code == 0
    folder = settings.data_dir
    old = (folder / "master.key").read_text()
    file_settings = Settings(data_dir=folder, database_url=settings.database_url, secret_key=None)
    engine = create_db_engine(str(settings.database_url))
    factory = create_session_factory(engine)
    try:
        box = open_secret_box(factory, settings=file_settings)
        new_key = os.urandom(32)
        replace_key_file(folder / "master.key.new", new_key)  # what `rotate` writes first
        with transaction(factory) as session:
            rotate_master_key(session, box=box, new_box=SecretBox(new_key), actor=TEST_ACTOR)
    finally:
        engine.dispose()
    # ...and the process died here, before master.key.new took master.key's place.
    doctor = run(settings, "doctor", "--json")
    checks = {check["name"]: check for check in json.loads(doctor.stdout)["checks"]}
    assert checks["master key in database"]["status"] == "warning"
    assert "interrupted" in checks["master key in database"]["detail"]
    result = run(settings, "dep", "keypair", "acme")
    assert result.exit_code == 0, result.output
    files = key_files(folder)
    assert set(files) == {"master.key", "master.key.old"} and files["master.key.old"] == old
    assert parse_master_key(files["master.key"], source="test") == new_key


def test_a_crash_before_the_commit_leaves_the_old_key_in_use(settings: Settings) -> None:
    assert run(settings, "dep", "keypair", "acme").exit_code == 0
    folder = settings.data_dir
    old = (folder / "master.key").read_text()
    replace_key_file(folder / "master.key.new", os.urandom(32))  # written, then the process died
    assert run(settings, "dep", "keypair", "acme").exit_code == 0
    assert (folder / "master.key").read_text() == old
    result = run(settings, "secrets", "rotate")
    assert result.exit_code == 0, result.output
    assert set(key_files(folder)) == {"master.key", "master.key.old"}


def test_with_pippin_secret_key_the_new_key_comes_from_standard_input(settings: Settings) -> None:
    assert settings.secret_key is not None
    old = settings.secret_key.get_secret_value()
    assert run(settings, "dep", "keypair", "acme", PIPPIN_SECRET_KEY=old).exit_code == 0
    refused = run(settings, "secrets", "rotate", PIPPIN_SECRET_KEY=old)
    assert refused.exit_code == 2 and "--new-key-stdin" in refused.output
    assert run(settings, "dep", "keypair", "acme", PIPPIN_SECRET_KEY=old).exit_code == 0  # nothing changed
    new = Fernet.generate_key().decode()
    bad = run(settings, "secrets", "rotate", "--new-key-stdin", PIPPIN_SECRET_KEY=old, input="not a key\n")
    assert bad.exit_code == 2 and "standard input" in bad.output and "not a key" not in bad.output
    result = run(settings, "secrets", "rotate", "--new-key-stdin", PIPPIN_SECRET_KEY=old, input=new + "\n")
    assert result.exit_code == 0, result.output
    assert "PIPPIN_SECRET_KEY" in result.output and new not in result.output and old not in result.output
    assert run(settings, "dep", "keypair", "acme", PIPPIN_SECRET_KEY=old).exit_code == 2
    assert run(settings, "dep", "keypair", "acme", PIPPIN_SECRET_KEY=new).exit_code == 0
    assert not any(path.name.startswith("master.key") for path in settings.data_dir.glob("*"))
