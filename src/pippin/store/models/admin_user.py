"""A person who signs in to the admin console, with a role and whether the account is disabled (failed sign-ins
are counted in ``sign_in_throttles``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, enum_column, utcnow


class AdminRole(StrEnum):
    """What an admin may do: ``admin`` changes things, ``read-only`` sees everything and changes nothing."""

    admin = "admin"
    read_only = "read-only"


class AdminUser(Base):
    """An admin account. Only an argon2 hash of the password is stored."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-case, so one mailbox is one account whatever the capitals typed at sign-in.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[AdminRole] = mapped_column(enum_column(AdminRole, length=16), default=AdminRole.admin)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set while the account is disabled: it cannot sign in and has no sessions; clearing it enables it again.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
