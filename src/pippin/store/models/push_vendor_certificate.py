"""The MDM vendor certificate and key an admin imports to sign the organisation's push certificate request.

One row (:data:`PUSH_VENDOR_CERTIFICATE_ID`). Apple issues the vendor certificate (``mdm.cer``) to a developer
account with "MDM CSR" enabled (reference section 5, "Getting the cert"); its key is stored only sealed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, utcnow

#: The one row of ``push_vendor_certificates``.
PUSH_VENDOR_CERTIFICATE_ID = 1


class PushVendorCertificate(Base):
    """The vendor certificate, the certificates above it (PEM, in order) and its sealed private key."""

    __tablename__ = "push_vendor_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    certificate_pem: Mapped[str] = mapped_column(Text)
    #: Intermediate and root certificates, PEM, each issuing the one before; empty when none was given.
    chain_pem: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(String(512))
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    fingerprint: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
