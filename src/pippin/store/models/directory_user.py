"""A person of the organisation: who signs in on a device's enrollment page and becomes its primary user.

This is the local directory that user affinity starts with (single sign-on comes later); it is not the admins'
table, and nobody in it can sign in to the console. Only an argon2 hash of the password is stored, made exactly
like admins' (``admin/passwords.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, utcnow


class DirectoryUser(Base):
    """One organisation user; disabled users keep their row, so devices still name their primary user."""

    __tablename__ = "directory_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-case, so ``Alice`` and ``alice`` are one user whatever the capitals typed at sign-in.
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set while the user is disabled: their password opens no enrollment page.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
