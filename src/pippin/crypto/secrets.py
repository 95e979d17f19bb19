"""Secrets at rest: authenticated encryption under one master key.

Every secret Pippin stores (DEP private keys, OAuth credentials, push and SCEP keys) goes through a
:class:`SecretBox` before it reaches the database, so a copy of the database alone reveals nothing.

The stored format is versioned, so the algorithm can change without a flag day::

    version (1 byte, 0x01) | key id (4 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext + tag

The key id is a truncated hash of the master key. It lets a wrong key be told apart from damaged data, so the
error can say which one happened; 32 bits of a hash reveal nothing useful about a 256-bit key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pippin.config import Settings
from pippin.errors import ConfigurationError

FORMAT_VERSION = 1
KEY_FILE_NAME = "master.key"
_KEY_BYTES = 32
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12
_HEADER_BYTES = 1 + _KEY_ID_BYTES + _NONCE_BYTES
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
MAKE_KEY_COMMAND = 'python -c "import secrets,base64;print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"'


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"pippin secret box key id\x00" + key).digest()[:_KEY_ID_BYTES]


def parse_master_key(text: str, *, source: str) -> bytes:
    """Decode a url-safe base64 master key; ``source`` names where it came from, for the error message."""
    stripped = text.strip()
    if _BASE64URL.fullmatch(stripped):
        try:
            key = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
        except (binascii.Error, ValueError):
            key = b""
        if len(key) == _KEY_BYTES:
            return key
    # Never echo the value: even a malformed key may be most of the real one.
    raise ConfigurationError(
        f"The master key in {source} is not url-safe base64 of 32 bytes.",
        hint=f"Make one with: {MAKE_KEY_COMMAND}",
    )


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"The master key file {path} can be read by other users (mode {stat.S_IMODE(mode):o}).",
            hint=f"Restrict it to its owner with: chmod 600 {path}",
        )
    return parse_master_key(path.read_text(encoding="ascii", errors="replace"), source=str(path))


def _create_key_file(path: Path) -> None:
    """Write a fresh key atomically: a temporary file made 0600, then linked to the final name.

    ``os.link`` fails if the name exists, so two processes starting at once agree on one key and neither
    ever reads a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)) + b"\n"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(encoded)
            handle.flush()
            os.fsync(handle.fileno())
        # Another process won the race: its key is the one everyone uses.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class SecretBox:
    """Encrypts and decrypts secrets with the master key (AES-256-GCM, versioned format)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ConfigurationError("The master key must be 32 bytes.", hint=f"Make one with: {MAKE_KEY_COMMAND}")
        self._aead = AESGCM(key)
        self._key_id = _key_id(key)
        self._master = key

    def __repr__(self) -> str:
        return "SecretBox(<master key hidden>)"

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        """The box for PIPPIN_SECRET_KEY, or for DATA_DIR/master.key (created with mode 0600 on first use)."""
        if settings.secret_key is not None:
            return cls(parse_master_key(settings.secret_key.get_secret_value(), source="PIPPIN_SECRET_KEY"))
        path = settings.data_dir / KEY_FILE_NAME
        try:
            if not path.exists():
                _create_key_file(path)
            return cls(_read_key_file(path))
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot use the master key file {path}: {exc.strerror or exc}.",
                hint="Make PIPPIN_DATA_DIR a folder this user may write to, or set PIPPIN_SECRET_KEY.",
            ) from None

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for one ``purpose`` (HKDF-SHA256 of the master key): signing what Pippin hands out.

        Keys for different purposes are unrelated, and none reveals the master key or another one.
        """
        info = b"pippin derived key\x00" + purpose.encode()
        return HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=info).derive(self._master)

    def encrypt(self, plaintext: bytes) -> bytes:
        """Seal ``plaintext``; a fresh random nonce each time, so equal secrets never look alike."""
        nonce = os.urandom(_NONCE_BYTES)
        header = bytes([FORMAT_VERSION]) + self._key_id + nonce
        # The header is authenticated too, so neither the version nor the key id can be swapped.
        return header + self._aead.encrypt(nonce, plaintext, header)

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Open what :meth:`encrypt` sealed; a wrong master key or altered data is a ConfigurationError."""
        if len(ciphertext) < _HEADER_BYTES + 16 or ciphertext[0] != FORMAT_VERSION:
            raise ConfigurationError(
                "A stored secret is damaged or in an unknown format.",
                hint="Restore the database from a backup, or upload the affected token or key again.",
            )
        header = ciphertext[:_HEADER_BYTES]
        if header[1 : 1 + _KEY_ID_BYTES] != self._key_id:
            raise ConfigurationError(
                "A stored secret was encrypted with a different master key.",
                hint="Set PIPPIN_SECRET_KEY (or DATA_DIR/master.key) to the key this database was created with.",
            )
        nonce = header[1 + _KEY_ID_BYTES :]
        try:
            return self._aead.decrypt(nonce, ciphertext[_HEADER_BYTES:], header)
        except InvalidTag:
            raise ConfigurationError(
                "A stored secret could not be decrypted with the master key: the key or the data changed.",
                hint="Set PIPPIN_SECRET_KEY (or DATA_DIR/master.key) to the key this database was created with, "
                "or restore the database from a backup.",
            ) from None
