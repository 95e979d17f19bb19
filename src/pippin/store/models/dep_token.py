"""A DEP server token: the link between one of Apple's MDM servers and Pippin, and its sync state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, enum_column, utcnow


class TokenStatus(StrEnum):
    """Whether Pippin can talk to Apple with this token, and if not, why (reference section 1.4, 2.2)."""

    awaiting_token = "awaiting_token"  # noqa: S105 (a key pair exists, no token uploaded yet)
    ok = "ok"
    expired = "expired"
    terms_not_signed = "terms_not_signed"
    access_denied = "access_denied"
    token_rejected = "token_rejected"  # noqa: S105


class CursorKind(StrEnum):
    """Which Apple endpoint the stored cursor continues: a full fetch or the change log (reference section 6)."""

    fetch = "fetch"
    sync = "sync"


class DEPToken(Base):
    """One named DEP token, its key pairs, what Apple says about it, and where its sync stands.

    Secrets (private keys, the four OAuth values) are stored only encrypted with the master key.
    The cursor lives here, on the token row, so it is written in the same transaction as the devices of the
    page it covers.
    """

    __tablename__ = "dep_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)

    # Key pairs: `current` decrypted the stored token; `pending` waits for a token that decrypts with it.
    private_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    certificate_pem: Mapped[str | None] = mapped_column(Text)
    pending_private_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    pending_certificate_pem: Mapped[str | None] = mapped_column(Text)

    # The token itself: consumer key/secret and access token/secret, as one encrypted JSON object.
    credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    apple_id: Mapped[str | None] = mapped_column(String(320))
    uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # What GET /account said (reference section 3.1).
    server_uuid: Mapped[str | None] = mapped_column(String(64), index=True)
    server_name: Mapped[str | None] = mapped_column(String(255))
    admin_id: Mapped[str | None] = mapped_column(String(320))
    org_name: Mapped[str | None] = mapped_column(String(255))
    org_email: Mapped[str | None] = mapped_column(String(320))
    org_phone: Mapped[str | None] = mapped_column(String(64))
    org_address: Mapped[str | None] = mapped_column(Text)
    org_id: Mapped[str | None] = mapped_column(String(64))
    org_type: Mapped[str | None] = mapped_column(String(32))
    fetch_limit: Mapped[int | None] = mapped_column(Integer)
    sync_limit: Mapped[int | None] = mapped_column(Integer)

    status: Mapped[TokenStatus] = mapped_column(enum_column(TokenStatus, length=32), default=TokenStatus.awaiting_token)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Sync state (reference section 6). The cursor is opaque text up to 1000 characters.
    cursor: Mapped[str | None] = mapped_column(Text)
    cursor_kind: Mapped[CursorKind | None] = mapped_column(enum_column(CursorKind, length=16))
    cursor_issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Bumped when a full fetch starts from no cursor; devices seen by that fetch carry the same number, so
    # the ones it did not return can be marked removed when it completes, even across a resumed fetch.
    fetch_generation: Mapped[int] = mapped_column(Integer, default=0)
    # Whether the fetch in progress refreshes known serials (a full sync) or only adds new ones.
    fetch_refreshes: Mapped[bool] = mapped_column(default=True)
    last_full_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The sync window: while it is in the future, no other sync of this token may start.
    sync_window_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sync_window_run_id: Mapped[int | None] = mapped_column(Integer)
    next_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
