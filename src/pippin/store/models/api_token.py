"""A bearer token for the REST API, kept only as a hash, with what it may do."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, enum_column, utcnow


class APITokenScope(StrEnum):
    """What requests with a token may do: ``read-only`` reads (GET, HEAD), ``read-write`` also changes things."""

    read_only = "read-only"
    read_write = "read-write"


class AdminAPIToken(Base):
    """An admin's API token. The token is shown once at creation; only its SHA-256 is stored."""

    __tablename__ = "admin_api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # Chosen at creation and never changed: a token that should do more is a new token.
    scope: Mapped[APITokenScope] = mapped_column(
        enum_column(APITokenScope, length=16), default=APITokenScope.read_write
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
