"""The Push Certificates Portal's certificates: create, renew, list and download them per Apple ID (reference 5).

Push certificates last one year. "Renew" on a certificate, by the Apple ID that created it, issues a new certificate
with the same topic, so enrolled devices keep working; uploading a request as a new certificate gets a new topic,
and every device must re-enroll. Another Apple ID does not see the certificate at all (404, as in Apple's portal,
where each Apple ID lists only its own). A certificate can be renewed until 30 days after it expired (the grace
period Apple gives); later, only a new certificate (new topic) is possible. Every refusal changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pippin.sim import push_ca, stored_authorities
from pippin.sim.models import SimPushCertificate
from pippin.sim.portal_errors import PortalError, not_found
from pippin.sim.push_requests import verify_request
from pippin.sim.servers import clean_apple_id

TOPIC_PREFIX = "com.apple.mgmt.External."
#: How long after expiry "Renew" still keeps the topic.
RENEWAL_GRACE = timedelta(days=30)
MAX_IDENTIFIER_LENGTH = 128


def create_certificate(
    session: Session, *, apple_id: str, upload: str | bytes, now: datetime, wall_now: datetime
) -> SimPushCertificate:
    """Upload a signed request as a new certificate: a new topic.

    The vendor certificate in the request is checked at ``wall_now`` (the real time, by which the vendor dated
    it); the push certificate is issued at ``now``, the simulator's clock.
    """
    apple_id = _owner(apple_id)
    topic = TOPIC_PREFIX + str(uuid.uuid4())
    return _issue(session, apple_id=apple_id, upload=upload, topic=topic, now=now, wall_now=wall_now)


def renew_certificate(
    session: Session, *, apple_id: str, identifier: str, upload: str | bytes, now: datetime, wall_now: datetime
) -> SimPushCertificate:
    """Renew the certificate named by serial or topic with a new signed request: same topic, a new year.

    As for :func:`create_certificate`, the request's vendor certificate is checked at ``wall_now``.
    """
    apple_id = _owner(apple_id)
    current = _current(session, get_certificate(session, apple_id=apple_id, identifier=identifier))
    if current.not_after + RENEWAL_GRACE <= now:
        raise PortalError(
            409,
            "renewal_period_over",
            f"This certificate expired on {current.not_after:%Y-%m-%d}, more than {RENEWAL_GRACE.days} days ago, and "
            "can no longer be renewed. Create a new certificate: it gets a new topic, so every device must re-enroll.",
        )
    certificate = _issue(session, apple_id=apple_id, upload=upload, topic=current.topic, now=now, wall_now=wall_now)
    certificate.renewed_from_serial = current.serial
    current.renewed_at = now
    return certificate


def get_certificate(session: Session, *, apple_id: str, identifier: str) -> SimPushCertificate:
    """The certificate of ``apple_id`` whose serial (hex) or topic is ``identifier``; for a topic, the newest."""
    apple_id = _owner(apple_id)
    wanted = identifier.strip()
    if len(wanted) > MAX_IDENTIFIER_LENGTH:
        wanted = ""
    serial = wanted.lower().removeprefix("0x")
    row = session.scalars(
        select(SimPushCertificate)
        .where(
            SimPushCertificate.apple_id == apple_id,
            or_(SimPushCertificate.serial == serial, SimPushCertificate.topic == wanted),
        )
        .order_by(SimPushCertificate.id.desc())
        .limit(1)
    ).first()
    if row is None:
        raise not_found(
            "certificate_not_found",
            f"{apple_id} has no push certificate with that serial or topic. A certificate can be seen and renewed "
            "only by the Apple ID that created it: sign in with that one, or list yours with "
            "GET /portal/push/certificates?apple_id=...",
        )
    return row


def list_certificates(session: Session, *, apple_id: str, now: datetime) -> list[dict[str, Any]]:
    """Every certificate of ``apple_id``, newest first, as the portal lists them."""
    apple_id = _owner(apple_id)
    rows = session.scalars(
        select(SimPushCertificate).where(SimPushCertificate.apple_id == apple_id).order_by(SimPushCertificate.id.desc())
    )
    return [certificate_view(row, now=now) for row in rows]


def certificate_view(row: SimPushCertificate, *, now: datetime) -> dict[str, Any]:
    """The portal's JSON for one certificate (its PEM is public: it holds no key)."""
    return {
        "serial": row.serial,
        "topic": row.topic,
        "apple_id": row.apple_id,
        "vendor": row.vendor,
        "not_before": _iso(row.not_before),
        "not_after": _iso(row.not_after),
        "created_at": _iso(row.created_at),
        "status": status(row, now=now),
        "renewed_from_serial": row.renewed_from_serial,
        "certificate_pem": row.certificate_pem,
    }


def status(row: SimPushCertificate, *, now: datetime) -> str:
    """``active``; ``renewed`` once a renewal replaced it (it still works until it expires); ``expired``."""
    if row.not_after <= now:
        return "expired"
    return "renewed" if row.renewed_at is not None else "active"


def _issue(
    session: Session, *, apple_id: str, upload: str | bytes, topic: str, now: datetime, wall_now: datetime
) -> SimPushCertificate:
    authorities = push_ca.load_authorities(session, now=now)
    request = verify_request(upload, authorities=authorities, now=wall_now)
    not_before = now.replace(microsecond=0)
    certificate = push_ca.issue_push_certificate(
        authorities,
        public_key=request.public_key,
        topic=topic,
        not_before=not_before,
        not_after=_one_year_after(not_before),
    )
    row = SimPushCertificate(
        serial=format(certificate.serial_number, "x"),
        topic=topic,
        apple_id=apple_id,
        certificate_pem=stored_authorities.certificate_pem(certificate),
        vendor=request.vendor.subject.rfc4514_string()[:255],
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _current(session: Session, row: SimPushCertificate) -> SimPushCertificate:
    """The newest certificate of ``row``'s topic: renewing an older one renews the topic's current certificate."""
    newest = session.scalars(
        select(SimPushCertificate)
        .where(SimPushCertificate.topic == row.topic)
        .order_by(SimPushCertificate.id.desc())
        .limit(1)
    ).first()
    return newest or row


def _owner(apple_id: str) -> str:
    """An Apple ID as the portal keys certificates by it: validated, and lowercase (Apple IDs ignore case)."""
    return clean_apple_id(apple_id).lower()


def _one_year_after(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + 1, day=28)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")
