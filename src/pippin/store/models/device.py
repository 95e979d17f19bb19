"""A corporate-owned device as Apple's DEP service reports it: Apple's side of its state, written only by the sync.

The enrollment side lives in ``enrollment.py``; the state admins see is derived from both in
``pippin.inventory.state``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, enum_column, utcnow
from pippin.store.models.dep_profile import AssignmentStatus


class AppleStatus(StrEnum):
    """Whether the device is assigned to one of Pippin's MDM servers at Apple; the sync's alone to write."""

    assigned = "assigned"
    removed = "removed"


class ProfileStatus(StrEnum):
    """Apple's ``profile_status`` for a device (reference section 4)."""

    empty = "empty"
    assigned = "assigned"
    pushed = "pushed"
    removed = "removed"


#: Apple's profile statuses with which a device gets a profile in Setup Assistant; others cannot enroll.
ENROLLABLE_PROFILE_STATUSES = ("assigned", "pushed")


def apple_holds_a_profile(*, apple_status: str | None, profile_status: str | None) -> bool:
    """Assigned to this server at Apple with a profile: switched on now, the device would enroll (reference 4)."""
    return apple_status == AppleStatus.assigned and profile_status in ENROLLABLE_PROFILE_STATUSES


class Device(Base):
    """One serial number assigned (now or once) to one of Pippin's MDM servers at Apple.

    ``apple_record`` keeps the latest device object exactly as Apple sent it; the columns beside it are the
    parsed fields Pippin filters and sorts on.
    """

    __tablename__ = "devices"
    __table_args__ = (
        Index("ix_devices_token_apple_status", "token_id", "apple_status"),
        # Due assignments, of all tokens or of one: status first, so a count for one token reads only its due
        # devices, never every device of the token.
        Index("ix_devices_assignment_due", "assignment_status", "token_id", "assignment_retry_at"),
        # Covers each profile's device counts by assignment status (the console's profile pages) without
        # reading the device rows.
        Index("ix_devices_profile_assignment", "assigned_profile_id", "assignment_status"),
        # The devices one sync wrote, for the default profile step (``dep/assignment.py``).
        Index("ix_devices_token_synced", "token_id", "last_synced_at"),
        # The inventory (``pippin.inventory.devices``), measured with bench/console.py at 100,000 devices:
        # the "last synced" order, both directions, completed by the serial as its keyset is;
        Index("ix_devices_synced_serial", "last_synced_at", "serial_number"),
        # Apple's side of the derived state and "cannot enroll", so sorting and counting by state never reads
        # the device rows (each carries Apple's whole record);
        Index(
            "ix_devices_state_inputs",
            "apple_status",
            "profile_status",
            "assigned_profile_id",
            "assigned_revision",
            "serial_number",
        ),
        # the search text's columns and the token, scanned in serial order without the rows: one token's first
        # page stops after a page of matches. (An index led by the token and the serial made SQLite scan it,
        # rows and all, for the state order.)
        Index("ix_devices_search", "serial_number", "token_id", "model", "asset_tag", "description"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    serial_number: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("dep_tokens.id", ondelete="SET NULL"), index=True)

    model: Mapped[str | None] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(255))
    color: Mapped[str | None] = mapped_column(String(64))
    asset_tag: Mapped[str | None] = mapped_column(String(128), index=True)
    os: Mapped[str | None] = mapped_column(String(32))
    device_family: Mapped[str | None] = mapped_column(String(32))

    profile_status: Mapped[str | None] = mapped_column(String(16))
    profile_uuid: Mapped[str | None] = mapped_column(String(64))
    profile_assign_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    profile_push_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    device_assigned_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    device_assigned_by: Mapped[str | None] = mapped_column(String(320))
    last_op_type: Mapped[str | None] = mapped_column(String(16))
    last_op_date: Mapped[datetime | None] = mapped_column(UTCDateTime())

    apple_status: Mapped[AppleStatus] = mapped_column(
        enum_column(AppleStatus, length=32),
        default=AppleStatus.assigned,
    )
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fetch_generation: Mapped[int] = mapped_column(Integer, default=0)

    apple_record: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    # The enrollment profile Pippin gives this device, and where that stands at Apple (``dep/assignment.py``).
    assigned_profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrollment_profiles.id", ondelete="SET NULL"), index=True
    )
    assigned_revision: Mapped[int | None] = mapped_column(Integer)
    assignment_status: Mapped[AssignmentStatus | None] = mapped_column(enum_column(AssignmentStatus, length=16))
    assignment_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    assignment_error: Mapped[str | None] = mapped_column(Text)
    assignment_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The claim of the runner sending the assignment, committed before the call to Apple and cleared with
    # Apple's answer: a device that still has one once the claim's lease is over may have been assigned at
    # Apple without the answer being stored, so it is looked up at Apple before it is sent again.
    assignment_claim: Mapped[str | None] = mapped_column(String(32))

    @property
    def can_enroll(self) -> bool:
        """Whether the device would enroll if switched on now: Apple holds a profile for it (reference 4)."""
        return apple_holds_a_profile(apple_status=self.apple_status, profile_status=self.profile_status)
