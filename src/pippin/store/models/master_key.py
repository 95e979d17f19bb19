"""Which master key seals this database's secrets (proof of it, never the key), and the keys kept across rotation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, utcnow

#: The one row of ``master_key_checks``: a database has one master key at a time.
MASTER_KEY_CHECK_ID = 1


class MasterKeyCheck(Base):
    """Proof of the master key the secrets are sealed with, written by the first process to use the database.

    Every process compares it with its own key before touching a secret (``admin/master_key.py``), so two
    processes with different keys can never seal secrets the other cannot open. ``check_value`` is
    ``SecretBox.check_value()`` (an HMAC under a key derived from the master key); ``fingerprint`` names the key
    in messages and in `pippin doctor`.
    """

    __tablename__ = "master_key_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32))
    check_value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SigningKey(Base):
    """The key of one of ``SIGNING_PURPOSES`` (signing what Pippin hands out), sealed with the master key.

    Stored rather than derived at each use so that a master key rotation re-seals it and keeps it: enrollment
    URLs Apple holds stay valid. First written as the HKDF of the master key in use then, the key Pippin
    derived before this table existed.
    """

    __tablename__ = "signing_keys"

    purpose: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
