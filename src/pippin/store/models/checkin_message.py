"""The check-in messages a device sent, kept as received beside what Pippin read from them.

STYLE.md (after nanomdm): the raw device plist is stored beside the parsed fields, so that what a device said
can be read again when Pippin's reading of it is in doubt. A TokenUpdate carries the UnlockToken and a
SetBootstrapToken the bootstrap token, so the raw body is sealed like every other secret. Growth is bounded:
only the last few messages per enrollment are kept (``mdm/checkin.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime


class CheckinMessage(Base):
    """One check-in message of one enrollment."""

    __tablename__ = "checkin_messages"
    __table_args__ = (Index("ix_checkin_messages_udid_id", "udid", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    udid: Mapped[str] = mapped_column(ForeignKey("enrollments.udid", ondelete="CASCADE"))
    message_type: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The identity certificate that signed it (its fingerprint).
    identity_fingerprint: Mapped[str] = mapped_column(String(64))
    raw_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
