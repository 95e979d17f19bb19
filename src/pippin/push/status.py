"""Where the push certificate stands: topic, expiry with the DEP tokens' 30 and 7 days, what APNs said, what to do."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from pippin.dep.schemas import ExpiryLevel
from pippin.dep.token import expiry_level
from pippin.push.schemas import PushCertificateRead, PushCertificateStatus
from pippin.push.vendor import find_vendor, to_vendor_read
from pippin.store.models import PUSH_CERTIFICATE_ID, PushCertificate, utcnow

PORTAL = "https://identity.apple.com"

_BY_LEVEL = {
    ExpiryLevel.ok: PushCertificateStatus.active,
    ExpiryLevel.warning: PushCertificateStatus.expiring,
    ExpiryLevel.alarm: PushCertificateStatus.expiring_soon,
    ExpiryLevel.expired: PushCertificateStatus.expired,
}


def _status(row: PushCertificate | None, level: ExpiryLevel | None) -> PushCertificateStatus:
    if row is None or (row.certificate_pem is None and row.pending_csr_pem is None):
        return PushCertificateStatus.not_started
    if level is None:
        return PushCertificateStatus.awaiting_certificate
    if row.refused_reason is not None and level != ExpiryLevel.expired:
        return PushCertificateStatus.refused_by_apns
    return _BY_LEVEL[level]


def _next_step(row: PushCertificate | None, status: PushCertificateStatus) -> str:
    renew = (
        f"Run `pippin push csr`, then at {PORTAL} sign in as {row.apple_id if row else None}, choose Renew on the "
        f"certificate with topic {row.topic if row else None}, upload the request, and upload the certificate "
        "Apple issues with `pippin push upload-cert FILE --apple-id ID`."
    )
    if status == PushCertificateStatus.not_started:
        return (
            "Run `pippin push csr` for the request (import your MDM vendor certificate first with "
            "`pippin push vendor import`, or have the CSR signed by an MDM vendor)."
        )
    if status == PushCertificateStatus.awaiting_certificate:
        return (
            f"Upload the request from `pippin push csr` at {PORTAL} (Create a Certificate), download the "
            "certificate and run `pippin push upload-cert FILE --apple-id YOUR_APPLE_ID`."
        )
    if status == PushCertificateStatus.refused_by_apns:
        return f"APNs refused this certificate. {renew}"
    if status in (PushCertificateStatus.expiring, PushCertificateStatus.expiring_soon, PushCertificateStatus.expired):
        waiting = " A renewal request is waiting for Apple's certificate." if row and row.pending_csr_pem else ""
        return renew + waiting
    return "Nothing to do; renew before it expires (Pippin warns 30 days ahead)."


def to_read(session: Session, row: PushCertificate | None, *, now: datetime) -> PushCertificateRead:
    not_after = row.not_after if row is not None and row.certificate_pem is not None else None
    level = None if not_after is None else expiry_level(not_after, now=now)
    status = _status(row, level)
    vendor = find_vendor(session)
    vendor_read = None if vendor is None else to_vendor_read(vendor, now=now)
    next_step = _next_step(row, status)
    if vendor_read is not None and vendor_read.expiry_level != ExpiryLevel.ok:
        when = "has expired" if vendor_read.days_left < 0 else f"expires in {vendor_read.days_left} days"
        next_step += (
            f" The MDM vendor certificate {when}: Apple refuses requests it signs after that; renew it in your Apple "
            "developer account and import it again (`pippin push vendor import`)."
        )
    return PushCertificateRead(
        status=status,
        topic=row.topic if row else None,
        not_after=not_after,
        days_left=None if not_after is None else math.floor((not_after - now) / timedelta(days=1)),
        expiry_level=level,
        apple_id=row.apple_id if row else None,
        fingerprint=row.fingerprint if row else None,
        uploaded_at=row.uploaded_at if row else None,
        refused_reason=row.refused_reason if row else None,
        refused_at=row.refused_at if row else None,
        pending_request_at=row.pending_created_at if row else None,
        vendor=vendor_read,
        next_step=next_step,
    )


def read_status(session: Session, *, now: datetime | None = None) -> PushCertificateRead:
    """The push certificate's status (``not_started`` before the first request)."""
    return to_read(session, session.get(PushCertificate, PUSH_CERTIFICATE_ID), now=now or utcnow())
