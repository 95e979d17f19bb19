"""Pippin's own certificate authority for device identities (SCEP), and the server identity it issued.

One row (:data:`PKI_AUTHORITY_ID`): a Pippin issues every device identity from one CA, whose certificate every
enrolled device was given in its enrollment profile (reference ``apple-mdm-protocol.md`` sections 1.3 and 6).
The server identity that signs enrollment profiles (section 1.5) is issued by that CA and kept beside it; it is
made on first use, so its columns may be empty. Private keys are stored only sealed with the master key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, utcnow

#: The one row of ``pki_authorities``.
PKI_AUTHORITY_ID = 1


class PKIAuthority(Base):
    """The SCEP CA's sealed key and certificate (DER), and the profile-signing identity's."""

    __tablename__ = "pki_authorities"

    id: Mapped[int] = mapped_column(primary_key=True)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    #: SHA-256 of the CA certificate's DER, lowercase hex: what the SCEP payload's ``CAFingerprint`` names.
    fingerprint: Mapped[str] = mapped_column(String(64))
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())

    server_identity_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    server_identity_certificate_der: Mapped[bytes | None] = mapped_column(LargeBinary)
    server_identity_not_after: Mapped[datetime | None] = mapped_column(UTCDateTime())

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
