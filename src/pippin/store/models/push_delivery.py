"""What Pippin knows about pushing to one enrollment: the push waiting to be sent, the last answer, the counts.

One row per enrollment (keyed by its UDID), written only by the push domain (``push/delivery.py``); the token and
PushMagic it pushes with live on the enrollment, written by the device half. A token APNs refused for good is
remembered here with the refusal (``refused_token``), so a new TokenUpdate, which brings another token, is
pushed again without anyone clearing a flag.

A *pending* push (``wanted_at`` set) is sent by whichever process claims it: the claim is a conditional update
that sets ``claim`` and moves ``next_attempt_at`` a lease ahead, committed before the call to APNs; the outcome is
written only while the row still carries that claim. A process that dies after claiming leaves a push whose lease
runs out, and the next claim sends it again: a push is never lost.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, enum_column


class PushResult(StrEnum):
    """How one push ended, as APNs answered it (``push/apns.py`` classifies the answer)."""

    #: APNs accepted it (200, with an ``apns-id``); it delivers when the device is reachable.
    delivered = "delivered"
    #: The token is not valid for the topic any more (400 BadDeviceToken, DeviceTokenNotForTopic, 410): never again.
    token_refused = "token_refused"  # noqa: S105 (an outcome, not a secret)
    #: APNs refused the push certificate (403, or the TLS handshake): nothing is pushed until a new one is uploaded.
    certificate_refused = "certificate_refused"
    #: Worth trying again later (429, 5xx, a dropped connection, a timeout).
    retryable = "retryable"
    #: APNs says the request itself is wrong (a bad topic, expiration or payload): a bug, never repeated.
    request_error = "request_error"
    #: Retried until the push's expiration (or its last attempt) without APNs accepting it: given up.
    expired = "expired"


class PushDelivery(Base):
    """The push state of one enrollment."""

    __tablename__ = "push_deliveries"
    __table_args__ = (
        # The sender's claim reads the due pushes in order of their next attempt, and nothing else.
        Index("ix_push_deliveries_next_attempt_at", "next_attempt_at"),
        # The sweep reads the enrollments whose next look is due, and nothing else.
        Index("ix_push_deliveries_next_sweep_at", "next_sweep_at"),
    )

    udid: Mapped[str] = mapped_column(ForeignKey("enrollments.udid", ondelete="CASCADE"), primary_key=True)

    # The pending push: asked for at (moved on when asked again while one is in flight, so the sender pushes once
    # more after it), given up at, attempts so far, due again at (all null when none is pending).
    wanted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Set by the sender that claimed the push, until it writes the outcome.
    claim: Mapped[str | None] = mapped_column(String(32))

    #: When the sweep next looks whether the device has been silent too long (null: not watched).
    next_sweep_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    last_push_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_result: Mapped[PushResult | None] = mapped_column(enum_column(PushResult, length=24))
    #: APNs's reason (``BadDeviceToken``…) or the kind of network failure, as short printable text.
    last_reason: Mapped[str | None] = mapped_column(String(64))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_apns_id: Mapped[str | None] = mapped_column(String(64))

    #: The token APNs refused for good, and when and why: a different token (a new TokenUpdate) is pushed again.
    refused_token: Mapped[str | None] = mapped_column(String(200))
    token_refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    token_refused_reason: Mapped[str | None] = mapped_column(String(64))

    pushes: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    token_refusals: Mapped[int] = mapped_column(Integer, default=0)
    certificate_refusals: Mapped[int] = mapped_column(Integer, default=0)
    retryable_failures: Mapped[int] = mapped_column(Integer, default=0)
    request_errors: Mapped[int] = mapped_column(Integer, default=0)
    expired: Mapped[int] = mapped_column(Integer, default=0)
