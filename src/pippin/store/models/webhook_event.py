"""The webhook events waiting to be posted, and those posted (or given up) lately, until they are pruned.

A row is written in the transaction of the check-in or command answer it reports (``mdm/webhooks.py``), so an
event exists exactly when what it reports was committed. Its body is the JSON the receiver gets, built once and
sealed: it carries the device's raw plist, which holds secrets (an UnlockToken, a bootstrap token) as nanomdm
sends them. Every delivery of an event posts the same bytes, so a receiver deduplicates by ``event_id``.

A *pending* event (``next_attempt_at`` set) is posted by whichever process claims it (``mdm/webhook_claims.py``):
the claim sets ``claim`` and moves ``next_attempt_at`` a lease ahead, committed before the POST; the outcome is
written only while the row still carries that claim. A process that dies after claiming leaves an event whose
lease runs out, and the next claim posts it again: an event is never lost, and may arrive twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, enum_column


class WebhookEventStatus(StrEnum):
    """Where one event stands."""

    #: Waiting for its next attempt (or claimed and being posted).
    pending = "pending"
    #: The receiver answered 2xx.
    delivered = "delivered"
    #: Not accepted by ``PIPPIN_WEBHOOK_MAX_AGE``: dropped, logged and counted.
    given_up = "given_up"


class WebhookEvent(Base):
    """One event for the webhook receiver."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        # The claim reads the due events in order of their next attempt.
        Index("ix_webhook_events_next_attempt_at", "next_attempt_at"),
        # A device's events go out in order: the claim looks for an older pending event of the same device.
        Index("ix_webhook_events_udid_id", "udid", "id"),
        # Pruning reads the finished events by age.
        Index("ix_webhook_events_finished_at", "finished_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: The ``event_id`` of the JSON body (a UUID), the receiver's key for deduplication.
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    #: nanomdm's topic name (``mdm.Authenticate``, ``mdm.Connect``...).
    topic: Mapped[str] = mapped_column(String(48))
    #: Not a foreign key: the event of a device's last message outlives its enrollment.
    udid: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The sealed JSON body, posted as it is at every attempt.
    body_encrypted: Mapped[bytes] = mapped_column(LargeBinary)

    status: Mapped[WebhookEventStatus] = mapped_column(enum_column(WebhookEventStatus, length=16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Due again at (null once finished); a claimed event's is its lease's end.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Set by the process that claimed the event, until it writes the outcome.
    claim: Mapped[str | None] = mapped_column(String(32))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The receiver's last HTTP status, or none when it could not be reached.
    last_status: Mapped[int | None] = mapped_column(Integer)
    #: Why the last attempt failed, as short printable text (``ConnectError``, ``HTTP 503``); never the body.
    last_error: Mapped[str | None] = mapped_column(String(64))
