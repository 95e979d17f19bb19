"""A bulk erase waiting for a second admin: what was asked, for which enrollments, by whom, and how far the queuing
of an approved one has come.

Erasing many devices at once is the one command an admin cannot send alone (issue 13): the request is stored
here with its devices frozen at request time (the approver approves exactly those, not whatever a filter matches
later), another admin approves it, and only then are the commands queued, one batch per transaction. The payload
(an erase PIN, say) is sealed by the master key. ``queued_through`` is the last UDID whose command is committed,
so a run that stopped half-way continues where it stopped instead of erasing anything twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, enum_column


class ApprovalStatus(StrEnum):
    """Where a request stands; a pending request past its ``expires_at`` reads as ``expired`` and cannot be
    approved."""

    pending = "pending"
    #: Approved; its commands are being queued (``queued_through`` says how far).
    approved = "approved"
    #: Every device's command is queued.
    queued = "queued"
    expired = "expired"


class CommandApproval(Base):
    __tablename__ = "command_approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_type: Mapped[str] = mapped_column(String(64))
    #: The admin's typed parameters as JSON, sealed: the command is built from them again when it is queued.
    payload_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    #: How the devices were chosen, for people (``serials A, B`` or ``state=enrolled``).
    selection: Mapped[str] = mapped_column(String(500))
    devices: Mapped[int] = mapped_column(Integer)
    status: Mapped[ApprovalStatus] = mapped_column(enum_column(ApprovalStatus, length=16))
    requested_by: Mapped[str] = mapped_column(String(320))
    requested_via: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(320))
    approved_via: Mapped[str | None] = mapped_column(String(16))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Shared by the commands queued for this request (``commands.bulk_id``).
    bulk_id: Mapped[str] = mapped_column(String(36))
    queued: Mapped[int] = mapped_column(Integer, default=0)
    queued_through: Mapped[str | None] = mapped_column(String(64))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CommandApprovalTarget(Base):
    """One enrollment a request would erase."""

    __tablename__ = "command_approval_targets"

    approval_id: Mapped[int] = mapped_column(ForeignKey("command_approvals.id", ondelete="CASCADE"), primary_key=True)
    udid: Mapped[str] = mapped_column(ForeignKey("enrollments.udid", ondelete="CASCADE"), primary_key=True)
