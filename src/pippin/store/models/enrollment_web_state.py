"""The single-use ``state`` of one device's enrollment sign-in page (user affinity), kept as its SHA-256.

Setup Assistant's web view is known to lose cookies between requests (reference ``apple-mdm-updates-2026.md``
section 4 item 18), so the page carries its state in a hidden field instead, and the state is bound here to
the device that opened the page (serial number and UDID from its signed MachineInfo) and to the profile
revision of the page's URL. It ends at its first successful sign-in (``used_at``), after too many wrong
passwords, or at ``expires_at``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, utcnow


class EnrollmentWebState(Base):
    """One opened enrollment sign-in page; the device holds the clear state, the database only its hash."""

    __tablename__ = "enrollment_web_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    serial_number: Mapped[str] = mapped_column(String(64))
    udid: Mapped[str] = mapped_column(String(64))
    profile_id: Mapped[int] = mapped_column(Integer)
    profile_revision: Mapped[int] = mapped_column(Integer)
    # Wrong passwords typed on this page: past a few, the page ends and setup must start again.
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
