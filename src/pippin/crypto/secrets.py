"""Secrets at rest: authenticated encryption under one master key.

Every secret Pippin stores (DEP private keys, OAuth credentials, push and SCEP keys) goes through a
:class:`SecretBox` before it reaches the database, so a copy of the database alone reveals nothing.

The stored format is versioned, so the algorithm can change without a flag day::

    version (1 byte, 0x01) | key id (4 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext + tag

The key id is a truncated hash of the master key. It lets a wrong key be told apart from damaged data, so the
error can say which one happened; 32 bits of a hash reveal nothing useful about a 256-bit key.

Every process sharing a database must hold the same master key. The database keeps proof of which one
(:meth:`SecretBox.check_value`, an HMAC under a key derived from the master key, and the key's fingerprint),
never the key; ``admin/master_key.py`` compares it at start. Keys derived for a purpose (signing what Pippin
hands out) are stored in the database sealed with the master key, so rotating the master key keeps them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pippin.config import Settings
from pippin.errors import ConfigurationError
from pippin.private_files import KEY_FILE_PREFIX, make_private_directory, sync_directory

FORMAT_VERSION = 1
KEY_FILE_NAME = KEY_FILE_PREFIX
#: Where `pippin secrets rotate` writes the next key before the database changes, and the key it replaced after.
NEW_KEY_FILE_NAME = f"{KEY_FILE_NAME}.new"
OLD_KEY_FILE_NAME = f"{KEY_FILE_NAME}.old"
#: Every purpose :meth:`SecretBox.derive_key` serves. Each database stores its key per purpose (sealed) at first
#: use, so that what was signed before a master key rotation still verifies after it.
SIGNING_PURPOSES = ("enrollment-url-reference", "sign-in throttle counters", "console-notice")
_KEY_BYTES = 32
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12
_HEADER_BYTES = 1 + _KEY_ID_BYTES + _NONCE_BYTES
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
MAKE_KEY_COMMAND = 'python -c "import secrets,base64;print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"'


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"pippin secret box key id\x00" + key).digest()[:_KEY_ID_BYTES]


def key_fingerprint(key: bytes) -> str:
    """A short, one-way name of the master key, to tell at a glance whether two processes share one."""
    digest = hashlib.sha256(b"pippin master key fingerprint\x00" + key).hexdigest()[:16]
    return ":".join(digest[i : i + 4] for i in range(0, 16, 4))


def generate_master_key() -> bytes:
    return secrets.token_bytes(_KEY_BYTES)


def encode_master_key(key: bytes) -> str:
    """The text form of a master key, as ``PIPPIN_SECRET_KEY`` and the key file hold it."""
    return base64.urlsafe_b64encode(key).decode()


def _hkdf(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=info).derive(key)


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


def read_key_file(path: Path) -> bytes:
    """The master key in ``path``; refused if other users can read the file (the key may have been copied)."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"The master key file {path} can be read by other users (mode {stat.S_IMODE(mode):o}).",
            hint=f"Restrict it to its owner with: chmod 600 {path}",
        )
    return parse_master_key(path.read_text(encoding="ascii", errors="replace"), source=str(path))


def _write_temporary_key_file(path: Path, key: bytes) -> Path:
    """``key`` in a new 0600 file beside ``path``, flushed to disk; the caller links or renames it into place."""
    make_private_directory(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(encode_master_key(key).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return temporary


def create_key_file(path: Path) -> bool:
    """Write a fresh key atomically: a temporary file made 0600, then linked to the final name.

    ``os.link`` fails if the name exists, so two processes starting at once agree on one key and neither
    ever reads a half-written file. True if this call's key is the one in ``path`` now.
    """
    temporary = _write_temporary_key_file(path, generate_master_key())
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False  # another process won the race: its key is the one everyone uses
    finally:
        temporary.unlink(missing_ok=True)
    return True


def replace_key_file(path: Path, key: bytes) -> None:
    """Put ``key`` in ``path`` in one step (a rename), whether or not the file exists; readers see old or new."""
    temporary = _write_temporary_key_file(path, key)
    try:
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    sync_directory(path.parent)


def promote_new_key_file(folder: Path) -> None:
    """Make ``master.key.new`` the key file, keeping the one it replaces as ``master.key.old``.

    The old file is linked to its new name first and the new one renamed over it after, so ``master.key``
    always exists and holds either key; each step can run again after a crash, or by two processes at once.
    """
    current, new, old = folder / KEY_FILE_NAME, folder / NEW_KEY_FILE_NAME, folder / OLD_KEY_FILE_NAME
    if current.exists() and new.exists():
        old.unlink(missing_ok=True)
        with contextlib.suppress(FileExistsError, FileNotFoundError):
            os.link(current, old)
    with contextlib.suppress(FileNotFoundError):
        os.replace(new, current)
    sync_directory(folder)


class SecretBox:
    """Encrypts and decrypts secrets with the master key (AES-256-GCM, versioned format)."""

    def __init__(self, key: bytes, *, signing_keys: Mapping[str, bytes] | None = None) -> None:
        """``signing_keys``: the key of each of :data:`SIGNING_PURPOSES` as the database stores it; a purpose
        without one is derived from ``key`` (what a database stores for a purpose when first used)."""
        if len(key) != _KEY_BYTES:
            raise ConfigurationError("The master key must be 32 bytes.", hint=f"Make one with: {MAKE_KEY_COMMAND}")
        self._aead = AESGCM(key)
        self._key_id = _key_id(key)
        self._master = key
        self._signing_keys = dict(signing_keys) if signing_keys is not None else None

    def __repr__(self) -> str:
        return "SecretBox(<master key hidden>)"

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        """The box for PIPPIN_SECRET_KEY, or for DATA_DIR/master.key (created with mode 0600 on first use).

        Not compared with any database: a process opens its box with ``admin/master_key.open_secret_box``, which
        refuses a key that is not the database's and attaches the database's signing keys.
        """
        if settings.secret_key is not None:
            return cls(parse_master_key(settings.secret_key.get_secret_value(), source="PIPPIN_SECRET_KEY"))
        path = settings.data_dir / KEY_FILE_NAME
        try:
            if not path.exists():
                create_key_file(path)
            return cls(read_key_file(path))
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot use the master key file {path}: {exc.strerror or exc}.",
                hint="Make PIPPIN_DATA_DIR a folder this user may write to, or set PIPPIN_SECRET_KEY.",
            ) from None

    @property
    def fingerprint(self) -> str:
        """The master key's fingerprint (what `pippin doctor` shows and a mismatch names)."""
        return key_fingerprint(self._master)

    def check_value(self) -> str:
        """Proof of the master key, to store beside the secrets: HMAC-SHA256 of a fixed label, hex, under a key
        derived from the master key for this one use. Equal values mean the same key; it reveals nothing of it."""
        check_key = _hkdf(self._master, b"pippin master key check\x00")
        return hmac.new(check_key, b"pippin master key check value, version 1", hashlib.sha256).hexdigest()

    def matches(self, check_value: str) -> bool:
        return hmac.compare_digest(self.check_value(), check_value)

    def sealed_by_this_key(self, ciphertext: bytes) -> bool:
        """Whether ``ciphertext`` names this master key (its key id); says nothing of whether it is intact."""
        return len(ciphertext) >= _HEADER_BYTES and ciphertext[1 : 1 + _KEY_ID_BYTES] == self._key_id

    @property
    def signing_purposes(self) -> frozenset[str]:
        """The purposes whose stored keys this box holds (none for a box made from the master key alone)."""
        return frozenset(self._signing_keys or ())

    def with_signing_keys(self, signing_keys: Mapping[str, bytes]) -> SecretBox:
        """This master key with the signing keys a database stores."""
        return SecretBox(self._master, signing_keys=signing_keys)

    def derive_key(self, purpose: str) -> bytes:
        """The 32-byte key for one ``purpose`` of :data:`SIGNING_PURPOSES`: signing what Pippin hands out.

        It is the database's stored key for the purpose (attached when the box was opened against the database),
        which is the HKDF-SHA256 of the master key that was in use when the purpose was first used and stays the
        same when the master key is rotated, so what Apple was given before (enrollment URLs) still verifies;
        without a stored one, that HKDF of this master key. Keys for different purposes are unrelated, and none
        reveals the master key or another one.
        """
        if purpose not in SIGNING_PURPOSES:
            raise ValueError(f"unknown key purpose {purpose!r}: add it to SIGNING_PURPOSES")
        if self._signing_keys is not None and purpose in self._signing_keys:
            return self._signing_keys[purpose]
        return _hkdf(self._master, b"pippin derived key\x00" + purpose.encode())

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
