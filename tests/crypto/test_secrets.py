"""SecretBox: secrets at rest under the master key, from PIPPIN_SECRET_KEY or a 0600 key file."""

from __future__ import annotations

import base64
import os
import random
import stat
import threading
from pathlib import Path

import pytest

from pippin.config import Settings
from pippin.crypto.secrets import KEY_FILE_NAME, SecretBox
from pippin.errors import ConfigurationError


def _key_text() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _settings(tmp_path: Path, secret_key: str | None = None) -> Settings:
    return Settings(data_dir=tmp_path / "data", secret_key=secret_key)


def test_round_trip_and_fresh_nonce_each_time(tmp_path: Path) -> None:
    box = SecretBox.from_settings(_settings(tmp_path, _key_text()))
    first, second = box.encrypt(b"consumer secret"), box.encrypt(b"consumer secret")
    assert first != second
    assert b"consumer secret" not in first
    assert box.decrypt(first) == box.decrypt(second) == b"consumer secret"
    assert box.decrypt(box.encrypt(b"")) == b""


def test_wrong_master_key_is_a_configuration_error_naming_the_fix(tmp_path: Path) -> None:
    sealed = SecretBox.from_settings(_settings(tmp_path, _key_text())).encrypt(b"x")
    other = SecretBox.from_settings(_settings(tmp_path, _key_text()))
    with pytest.raises(ConfigurationError, match="different master key") as caught:
        other.decrypt(sealed)
    assert "PIPPIN_SECRET_KEY" in str(caught.value.hint)


@pytest.mark.parametrize("position", [0, 1, 5, 17, -1])
def test_altered_ciphertext_is_refused(tmp_path: Path, position: int) -> None:
    box = SecretBox.from_settings(_settings(tmp_path, _key_text()))
    sealed = bytearray(box.encrypt(b"private key"))
    sealed[position] ^= 0x01
    with pytest.raises(ConfigurationError):
        box.decrypt(bytes(sealed))


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01" + b"\x00" * 20, b"\x02" + b"\x00" * 64])
def test_truncated_or_unknown_format_is_refused(tmp_path: Path, data: bytes) -> None:
    box = SecretBox.from_settings(_settings(tmp_path, _key_text()))
    with pytest.raises(ConfigurationError, match="damaged or in an unknown format"):
        box.decrypt(data)


@pytest.mark.parametrize(
    "bad_key",
    [
        "short",
        # (fixed bytes: the ids are made of them, and pytest-xdist's processes must collect the same tests)
        base64.urlsafe_b64encode(random.Random(16).randbytes(16)).decode(),
        base64.urlsafe_b64encode(random.Random(33).randbytes(33)).decode(),
        base64.b64encode(b"\xfb" * 32).decode(),  # standard base64 with + and /
        "not base64 at all!" * 3,
    ],
)
def test_malformed_secret_key_says_how_to_make_one_without_echoing_it(tmp_path: Path, bad_key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SecretBox.from_settings(_settings(tmp_path, bad_key))
    assert "PIPPIN_SECRET_KEY" in caught.value.message
    assert "secrets.token_bytes(32)" in str(caught.value.hint)
    assert bad_key not in str(caught.value)


def test_key_without_padding_is_accepted(tmp_path: Path) -> None:
    key = _key_text()
    box = SecretBox.from_settings(_settings(tmp_path, key.rstrip("=")))
    assert SecretBox.from_settings(_settings(tmp_path, key)).decrypt(box.encrypt(b"x")) == b"x"


def test_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    sealed = SecretBox.from_settings(settings).encrypt(b"kept")
    path = settings.data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SecretBox.from_settings(settings).decrypt(sealed) == b"kept"
    assert [p.name for p in settings.data_dir.iterdir()] == [KEY_FILE_NAME]


def test_processes_starting_together_agree_on_one_key_file(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    boxes: list[SecretBox] = []
    threads = [threading.Thread(target=lambda: boxes.append(SecretBox.from_settings(settings))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sealed = boxes[0].encrypt(b"same")
    assert all(box.decrypt(sealed) == b"same" for box in boxes)


def test_group_readable_key_file_is_refused_with_the_chmod_fix(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    SecretBox.from_settings(settings)
    path = settings.data_dir / KEY_FILE_NAME
    path.chmod(0o640)
    with pytest.raises(ConfigurationError, match="other users") as caught:
        SecretBox.from_settings(settings)
    assert f"chmod 600 {path}" in str(caught.value.hint)


def test_damaged_key_file_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.data_dir.mkdir(parents=True)
    path = settings.data_dir / KEY_FILE_NAME
    path.write_text("garbage\n")
    path.chmod(0o600)
    with pytest.raises(ConfigurationError, match=KEY_FILE_NAME):
        SecretBox.from_settings(settings)


def test_repr_hides_the_key(tmp_path: Path) -> None:
    key = _key_text()
    box = SecretBox.from_settings(_settings(tmp_path, key))
    assert key not in repr(box)
    assert "hidden" in repr(box)
