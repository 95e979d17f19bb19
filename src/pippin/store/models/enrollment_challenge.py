"""One-time SCEP challenges: the secret an enrollment profile carries, bound to what the profile was made for.

Only the SHA-256 of a challenge is stored: the clear value exists in the profile the device received and
nowhere else, so a copy of the database cannot enroll a device. The binding columns say whom the challenge was
given to (a DEP device by serial number, a web-view user, a manual enrollment link); the identity certificate
issued against the challenge points back here (``issued_certificates.challenge_id``), which is how check-in
learns the binding of an identity.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, utcnow


class EnrollmentChallenge(Base):
    """A challenge's hash, its binding, and how many enrollments it still allows until when."""

    __tablename__ = "enrollment_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 of the clear challenge, lowercase hex.
    challenge_hash: Mapped[str] = mapped_column(String(64), unique=True)

    serial_number: Mapped[str | None] = mapped_column(String(64))
    udid: Mapped[str | None] = mapped_column(String(64))
    profile_id: Mapped[int | None] = mapped_column(Integer)
    profile_revision: Mapped[int | None] = mapped_column(Integer)
    primary_user_id: Mapped[int | None] = mapped_column(Integer)
    link_id: Mapped[int | None] = mapped_column(Integer)

    #: Certificates the challenge may still be redeemed for: one for a DEP device, N for a manual link.
    uses_left: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
