"""The master key's check value, the signing keys a box carries, and the key files rotation swaps."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pippin.crypto.secrets import (
    KEY_FILE_NAME,
    NEW_KEY_FILE_NAME,
    OLD_KEY_FILE_NAME,
    SIGNING_PURPOSES,
    SecretBox,
    encode_master_key,
    promote_new_key_file,
    read_key_file,
    replace_key_file,
)


def test_the_check_value_names_one_key_and_reveals_none() -> None:
    key = os.urandom(32)
    box, same, other = SecretBox(key), SecretBox(key), SecretBox(os.urandom(32))
    assert box.check_value() == same.check_value() != other.check_value()
    assert box.matches(same.check_value()) and not box.matches(other.check_value())
    assert key.hex() not in box.check_value() and encode_master_key(key) not in box.check_value()
    assert box.fingerprint == same.fingerprint != other.fingerprint
    assert box.sealed_by_this_key(same.encrypt(b"x")) and not box.sealed_by_this_key(other.encrypt(b"x"))


def test_stored_signing_keys_outlive_the_master_key_they_were_derived_from() -> None:
    first = SecretBox(os.urandom(32))
    stored = {purpose: first.derive_key(purpose) for purpose in SIGNING_PURPOSES}
    rotated = SecretBox(os.urandom(32)).with_signing_keys(stored)
    assert all(rotated.derive_key(purpose) == stored[purpose] for purpose in SIGNING_PURPOSES)
    assert SecretBox(os.urandom(32)).derive_key(SIGNING_PURPOSES[0]) != stored[SIGNING_PURPOSES[0]]
    with pytest.raises(ValueError, match="unknown key purpose"):
        first.derive_key("something-else")


def test_a_replaced_key_file_is_0600_and_holds_the_key(tmp_path: Path) -> None:
    key = os.urandom(32)
    replace_key_file(tmp_path / "keys" / KEY_FILE_NAME, key)
    assert stat.S_IMODE((tmp_path / "keys" / KEY_FILE_NAME).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert read_key_file(tmp_path / "keys" / KEY_FILE_NAME) == key
    assert [path.name for path in (tmp_path / "keys").iterdir()] == [KEY_FILE_NAME]


def test_promoting_the_new_key_keeps_the_old_and_can_run_again_after_a_crash(tmp_path: Path) -> None:
    old, new = os.urandom(32), os.urandom(32)
    replace_key_file(tmp_path / KEY_FILE_NAME, old)
    replace_key_file(tmp_path / NEW_KEY_FILE_NAME, new)
    os.link(tmp_path / KEY_FILE_NAME, tmp_path / OLD_KEY_FILE_NAME)  # the first step done, then a crash
    promote_new_key_file(tmp_path)
    promote_new_key_file(tmp_path)  # and once more by another process: nothing changes
    assert read_key_file(tmp_path / KEY_FILE_NAME) == new
    assert read_key_file(tmp_path / OLD_KEY_FILE_NAME) == old
    assert not (tmp_path / NEW_KEY_FILE_NAME).exists()
