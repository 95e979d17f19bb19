"""One master key per database: the first process records it, any other key is refused and writes nothing.

On SQLite and PostgreSQL, with the key from PIPPIN_SECRET_KEY and from a data directory's key file, including
the reported case: a second data directory on the same database must not make a key of its own.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.admin.master_key import MasterKeyMismatch, confirm_master_key, open_secret_box
from pippin.config import Settings
from pippin.crypto.secrets import KEY_FILE_NAME, SIGNING_PURPOSES, SecretBox, parse_master_key
from pippin.dep import token as token_service
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import Base, DEPToken, MasterKeyCheck, SigningKey
from tests.actors import TEST_ACTOR
from tests.crypto.openssl_tokens import pooled_key_generator


def env_settings(settings: Settings, key: str | None = None) -> Settings:
    return Settings(
        data_dir=settings.data_dir, database_url=settings.database_url, secret_key=key or Fernet.generate_key().decode()
    )


def file_settings(settings: Settings, data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, database_url=settings.database_url, secret_key=None)


def row_counts(factory: SessionFactory) -> dict[str, int]:
    with read_transaction(factory) as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def make_keypair(factory: SessionFactory, box: SecretBox, name: str = "acme") -> None:
    with transaction(factory) as session:
        token_service.create_keypair(session, name=name, box=box, actor=TEST_ACTOR, generate_key=pooled_key_generator())


def test_the_first_process_records_its_key_and_keeps_the_enrollment_signing_key_it_derived(
    session_factory: SessionFactory, settings: Settings
) -> None:
    box = open_secret_box(session_factory, settings=settings)
    assert settings.secret_key is not None
    plain = SecretBox(parse_master_key(settings.secret_key.get_secret_value(), source="test"))
    with read_transaction(session_factory) as session:
        check = session.get(MasterKeyCheck, 1)
        assert check is not None and check.fingerprint == plain.fingerprint and plain.matches(check.check_value)
        assert settings.secret_key.get_secret_value() not in check.check_value
        stored = {row.purpose: row.key_encrypted for row in session.scalars(select(SigningKey))}
    assert set(stored) == set(SIGNING_PURPOSES)
    for purpose in SIGNING_PURPOSES:
        # The URLs signed before this table existed used the key derived from the master key: still the same one.
        assert plain.decrypt(stored[purpose]) == plain.derive_key(purpose) == box.derive_key(purpose)
    assert open_secret_box(session_factory, settings=settings).derive_key(SIGNING_PURPOSES[0]) == box.derive_key(
        SIGNING_PURPOSES[0]
    )


def test_another_key_from_the_environment_is_refused_and_changes_nothing(
    session_factory: SessionFactory, settings: Settings
) -> None:
    make_keypair(session_factory, open_secret_box(session_factory, settings=settings))
    before = row_counts(session_factory)
    other = env_settings(settings)
    with pytest.raises(MasterKeyMismatch) as caught:
        open_secret_box(session_factory, settings=other)
    assert "PIPPIN_SECRET_KEY" in caught.value.message and "same master key" in str(caught.value.hint)
    assert other.secret_key is not None and other.secret_key.get_secret_value() not in str(caught.value)
    assert row_counts(session_factory) == before


def test_a_second_data_directory_makes_no_key_of_its_own(
    session_factory: SessionFactory, settings: Settings, tmp_path: Path
) -> None:
    first = file_settings(settings, tmp_path / "first")
    make_keypair(session_factory, open_secret_box(session_factory, settings=first))
    before = row_counts(session_factory)
    second = file_settings(settings, tmp_path / "second")
    with pytest.raises(MasterKeyMismatch, match="does not exist") as caught:
        open_secret_box(session_factory, settings=second)
    assert str(tmp_path / "second" / KEY_FILE_NAME) in caught.value.message
    assert not (tmp_path / "second" / KEY_FILE_NAME).exists()
    assert row_counts(session_factory) == before
    # A copy of the first directory's key file is the documented fix.
    (tmp_path / "second").mkdir(mode=0o700)
    (tmp_path / "second" / KEY_FILE_NAME).write_bytes((tmp_path / "first" / KEY_FILE_NAME).read_bytes())
    (tmp_path / "second" / KEY_FILE_NAME).chmod(0o600)
    open_secret_box(session_factory, settings=second)


def test_a_database_from_before_the_check_is_claimed_only_by_the_key_of_its_secrets(
    session_factory: SessionFactory, settings: Settings
) -> None:
    assert settings.secret_key is not None
    sealing = SecretBox(parse_master_key(settings.secret_key.get_secret_value(), source="test"))
    make_keypair(session_factory, sealing)  # sealed with no check recorded, as before the check existed
    before = row_counts(session_factory)
    with pytest.raises(MasterKeyMismatch, match="sealed with another master key"):
        open_secret_box(session_factory, settings=env_settings(settings))
    assert row_counts(session_factory) == before
    box = open_secret_box(session_factory, settings=settings)
    with read_transaction(session_factory) as session:
        token = session.scalars(select(DEPToken)).one()
        assert token.pending_private_key_encrypted is not None
        assert box.decrypt(token.pending_private_key_encrypted)


def test_two_data_directories_starting_together_on_an_empty_database_agree_on_one_key(
    session_factory: SessionFactory, settings: Settings, tmp_path: Path
) -> None:
    results: dict[str, Any] = {}
    start = threading.Barrier(2)

    def open_from(folder: str) -> None:
        start.wait()
        try:
            results[folder] = open_secret_box(session_factory, settings=file_settings(settings, tmp_path / folder))
        except MasterKeyMismatch as error:
            results[folder] = error

    threads = [threading.Thread(target=open_from, args=(folder,)) for folder in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    boxes = {folder: result for folder, result in results.items() if isinstance(result, SecretBox)}
    refused = [folder for folder, result in results.items() if isinstance(result, MasterKeyMismatch)]
    assert len(boxes) == 1 and len(refused) == 1
    # The refused one took back the key file it made: it could never open this database.
    assert not (tmp_path / refused[0] / KEY_FILE_NAME).exists()
    with read_transaction(session_factory) as session:
        check = session.get(MasterKeyCheck, 1)
        assert check is not None and next(iter(boxes.values())).matches(check.check_value)


def test_a_secret_is_not_sealed_by_a_process_whose_key_was_replaced_while_it_ran(
    session_factory: SessionFactory, settings: Settings
) -> None:
    stale = open_secret_box(session_factory, settings=settings)
    with transaction(session_factory) as session:
        check = session.get(MasterKeyCheck, 1)
        assert check is not None
        replacement = SecretBox(os.urandom(32))
        check.check_value, check.fingerprint = replacement.check_value(), replacement.fingerprint
    with pytest.raises(MasterKeyMismatch, match="changed"):
        make_keypair(session_factory, stale)
    with read_transaction(session_factory) as session:
        assert session.scalars(select(DEPToken)).all() == []


def test_confirming_the_key_of_a_fresh_database_passes(session: Session, settings: Settings) -> None:
    assert settings.secret_key is not None
    confirm_master_key(session, SecretBox(parse_master_key(settings.secret_key.get_secret_value(), source="test")))
