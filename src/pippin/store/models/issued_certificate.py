"""Every device identity certificate Pippin's SCEP CA issued, by fingerprint.

Check-in finds the enrollment's identity here by the SHA-256 of the certificate a device signs with
(``Mdm-Signature``) or presents through a TLS proxy; ``challenge_id`` leads to the enrollment binding, ``udid`` is
set when the device's Authenticate binds the identity, and ``revoked_at`` ends the identity's use.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, utcnow


class IssuedCertificate(Base):
    """One issued certificate, its validity, what it was issued against, and whether it is revoked."""

    __tablename__ = "issued_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The certificate's serial number, lowercase hex.
    serial: Mapped[str] = mapped_column(String(40), unique=True)
    #: SHA-256 of the certificate's DER, lowercase hex.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    #: The subject as RFC 4514 text (what the CSR asked for).
    subject: Mapped[str] = mapped_column(String(1024))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("enrollment_challenges.id", ondelete="RESTRICT"), index=True)
    #: The certificate this one renewed (RenewalReq), when it was a renewal.
    renewed_from_id: Mapped[int | None] = mapped_column(ForeignKey("issued_certificates.id", ondelete="SET NULL"))
    udid: Mapped[str | None] = mapped_column(String(64), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
