"""Pippin's own shapes for pushes: the push certificate, one enrollment's pushes, and a test push's answer.

What the REST API returns and `pippin push ... --json` prints, with the same keys; never a key, never a PushMagic.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from pippin.dep.schemas import ExpiryLevel
from pippin.store.models import PushResult


class PushCertificateStatus(StrEnum):
    """Where the organisation's push certificate stands (the same 30 and 7 days as DEP tokens)."""

    #: Nothing yet: start with `pippin push csr`.
    not_started = "not_started"
    #: A request was made; the certificate Apple issues for it has not been uploaded.
    awaiting_certificate = "awaiting_certificate"
    active = "active"
    #: Under 30 days left.
    expiring = "expiring"
    #: Under 7 days left.
    expiring_soon = "expiring_soon"
    expired = "expired"
    #: APNs refused the certificate (see ``refused_reason``); a new upload clears it.
    refused_by_apns = "refused_by_apns"


class RequestKind(StrEnum):
    """What `pippin push csr` hands out."""

    #: The base64 XML plist ``PushCertificateRequest`` that identity.apple.com takes (signed with the vendor key).
    signed_request = "signed_request"
    #: The plain CSR (PEM), for an outside MDM vendor's signing service.
    csr = "csr"


class VendorCertificateRead(BaseModel):
    """The imported MDM vendor certificate; never its key."""

    subject: str
    not_after: datetime
    days_left: int = Field(description="Whole days until expiry; negative once expired.")
    expiry_level: ExpiryLevel
    fingerprint: str = Field(description="SHA-256 of the certificate's DER, hex.")
    chain_length: int = Field(description="How many certificates above the vendor certificate were imported.")
    imported_at: datetime


class PushCertificateRead(BaseModel):
    """The organisation's push certificate as an administrator sees it; never any key."""

    status: PushCertificateStatus
    topic: str | None = Field(description="The certificate's topic (com.apple.mgmt…); a renewal must keep it.")
    not_after: datetime | None = Field(description="When the active certificate expires.")
    days_left: int | None = Field(description="Whole days until expiry; negative once expired.")
    expiry_level: ExpiryLevel | None = Field(description="None until a certificate is uploaded.")
    apple_id: str | None = Field(description="The Apple ID that must renew the certificate at identity.apple.com.")
    fingerprint: str | None = Field(description="SHA-256 of the active certificate's DER, hex.")
    uploaded_at: datetime | None
    refused_reason: str | None = Field(description="Why APNs refused the active certificate, if it did.")
    refused_at: datetime | None
    pending_request_at: datetime | None = Field(
        description="When the request now waiting for Apple's certificate was made; the active one still works."
    )
    vendor: VendorCertificateRead | None = Field(description="The imported MDM vendor certificate, if any.")
    next_step: str = Field(description="What to do next, in words.")


class PushRequestFile(BaseModel):
    """The file to take to Apple (or a vendor), and what it is."""

    kind: RequestKind
    filename: str
    media_type: str
    content: bytes = Field(exclude=True)
    #: Whether the pending key was reused (the same request as before) rather than made now.
    reused: bool
    warnings: list[str] = Field(default_factory=list)


class PushCertificateUploadResult(BaseModel):
    """The certificate now active, and what the administrator should know about it."""

    certificate: PushCertificateRead
    renewal: bool = Field(description="Whether a certificate with the same topic was replaced (a renewal).")
    topic_replaced: bool = Field(description="Whether the topic changed: every enrolled device must re-enroll.")
    warnings: list[str] = Field(default_factory=list)


class VendorImportResult(BaseModel):
    vendor: VendorCertificateRead
    warnings: list[str] = Field(default_factory=list)


class TokenState(StrEnum):
    """Whether Pippin can push to an enrollment's token."""

    #: The device has sent no TokenUpdate yet.
    missing = "missing"
    valid = "valid"
    #: APNs refused this token for good; a new TokenUpdate brings another one.
    refused = "refused"


class PushCountsRead(BaseModel):
    pushes: int = 0
    delivered: int = 0
    token_refused: int = 0
    certificate_refused: int = 0
    retryable: int = 0
    request_error: int = 0
    expired: int = 0


class PushStatusRead(BaseModel):
    """One enrollment's pushes: the token's state, the push waiting (if any), the last answer, the counts."""

    udid: str
    token_state: TokenState
    token_refused_at: datetime | None = None
    token_refused_reason: str | None = None
    pending: bool = False
    wanted_at: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    expires_at: datetime | None = None
    last_push_at: datetime | None = None
    last_result: PushResult | None = None
    last_status: int | None = None
    last_reason: str | None = None
    last_apns_id: str | None = None
    next_sweep_at: datetime | None = None
    counts: PushCountsRead


class PushTestRead(BaseModel):
    """What APNs answered to ``pippin push test``."""

    result: PushResult
    status: int | None
    reason: str | None
    apns_id: str | None
    topic: str
    apns_base_url: str
