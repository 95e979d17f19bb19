"""The organisation's MDM push certificate: the key Pippin made, the request waiting at Apple, the certificate in use.

One row (:data:`PUSH_CERTIFICATE_ID`): an organisation pushes with one certificate, whose topic every enrolled
device knows (reference section 5, "Topic"). Private keys are stored only sealed with the master key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, utcnow

#: The one row of ``push_certificates``.
PUSH_CERTIFICATE_ID = 1


class PushCertificate(Base):
    """The active push certificate (with its key) and the pending request for the next one.

    `pending`: a key and its CSR made by `pippin push csr`, waiting for the certificate Apple issues for it.
    `active`: the certificate Apple issued, its key, and what it says (topic, expiry). An upload whose
    certificate holds the pending key's public half moves the pending key to active; a renewal keeps the topic.
    """

    __tablename__ = "push_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)

    pending_private_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    pending_csr_pem: Mapped[str | None] = mapped_column(Text)
    pending_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    private_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    certificate_pem: Mapped[str | None] = mapped_column(Text)
    #: The subject's UID, ``com.apple.mgmt.External.<uuid>``; a renewal must keep it.
    topic: Mapped[str | None] = mapped_column(String(255))
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: SHA-256 of the certificate's DER, hex.
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    #: The Apple ID that created the certificate at identity.apple.com: only it can renew with the same topic.
    apple_id: Mapped[str | None] = mapped_column(String(320))
    uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    #: APNs refused this certificate (by fingerprint): why, and when. A new upload clears it.
    refused_reason: Mapped[str | None] = mapped_column(Text)
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
