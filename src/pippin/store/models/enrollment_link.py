"""A manual enrollment link: a URL that serves an enrollment profile to a device that is not (or not yet) in DEP.

For test devices, re-enrollment and load tests. The URL's token is stored as its SHA-256 only; the profile it
serves carries a SCEP challenge that allows ``uses`` enrollments until ``expires_at`` (the challenge's own row,
``enrollment_challenges`` with this link's id, counts what is left). The clear challenge, needed to build the
profile again each time the link is opened, is sealed with the master key (``challenge_encrypted``); the
challenge's row keeps only its hash.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, utcnow


class EnrollmentLink(Base):
    """One link an admin made with `pippin enroll link`, or a profile written with `pippin enroll profile`."""

    __tablename__ = "enrollment_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Null for a profile written to a file: it has no URL, only the challenge it carries.
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    uses: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(320))
    # The clear SCEP challenge of the link's profile, sealed.
    challenge_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
