"""The counters that slow down password guessing, kept in the database so every server on it shares them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, enum_column


class ThrottleScope(StrEnum):
    """What one counter counts sign-in attempts of (see ``admin/sign_in_throttle.py`` for the rules)."""

    #: One client address, whatever account it tries.
    address = "address"
    #: One account (as typed, existing or not) from one client address.
    account_address = "account_address"
    #: One account (as typed, existing or not) from every address that never signed in to it.
    account = "account"


class SignInThrottle(Base):
    """Attempts of one scope and key in the current window, and until when that key is refused.

    ``key`` is an HMAC of the scope, the account as typed and the address, under a key derived from the master
    key: what was typed as an e-mail address (a password, now and then) is never stored, not even as a plain
    hash that could be guessed offline.
    """

    __tablename__ = "sign_in_throttles"
    __table_args__ = (
        UniqueConstraint("scope", "key", name="uq_sign_in_throttles_scope_key"),
        Index("ix_sign_in_throttles_window_started_at", "window_started_at"),
        Index("ix_sign_in_throttles_account_key", "account_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[ThrottleScope] = mapped_column(enum_column(ThrottleScope, length=16))
    key: Mapped[str] = mapped_column(String(64))
    # Attempts counted since window_started_at, an attempt that succeeded given back.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # account_address only: the last successful sign-in from this address, which makes the address familiar.
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # account and account_address: the account's own counter key, so that unlocking an account
    # (``release_account``) finds its counters from every address without the addresses.
    account_key: Mapped[str | None] = mapped_column(String(64))
