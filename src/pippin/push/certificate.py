"""The push certificate Apple issued: uploaded against the pending request, renewed with the same topic, and opened
for the APNs client.

Reference section 5: the certificate's subject UID (OID 0.9.2342.19200300.100.1.1) is the topic, starting
``com.apple.mgmt``; it lasts a year; renewing it at identity.apple.com with the same Apple ID keeps the topic and
every enrolled device with it, while a new certificate has a new topic and every device must enroll again. So an
upload that would change the topic is refused unless the admin says, on purpose, that the devices may go.

An upload is one transaction with no outside call: the certificate is checked, its key is the pending request's
(or the active one's), and the certificate, its facts and the audit event are stored together, or nothing is.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.admin.master_key import confirm_master_key
from pippin.crypto.certs import CLOCK_SKEW_ALLOWANCE, certificate_to_pem, public_keys_match
from pippin.crypto.keys import open_private_key
from pippin.crypto.pem import fingerprint, load_certificates
from pippin.crypto.secrets import SecretBox
from pippin.dep.token import WARNING_DAYS
from pippin.errors import Conflict, InvalidInput
from pippin.push.identity import PushIdentity
from pippin.push.schemas import PushCertificateUploadResult
from pippin.push.status import PORTAL, to_read
from pippin.store.models import PUSH_CERTIFICATE_ID, Enrollment, EnrollmentStatus, PushCertificate, utcnow
from pippin.text import check_text, email_problem

logger = logging.getLogger(__name__)

#: Apple's push certificate is about 2 kB; this bounds what is read from a file or an upload.
MAX_CERTIFICATE_FILE_BYTES = 100_000
#: Every MDM push topic starts so (reference section 5, "Topic").
MDM_TOPIC_PREFIX = "com.apple.mgmt"
MAX_REFUSAL_REASON_CHARS = 500
_EXPECTED = "the push certificate Apple issued (the .pem downloaded from identity.apple.com)"
_WHERE = (
    f"Upload the certificate you downloaded from the Apple Push Certificates Portal ({PORTAL}) after giving it "
    "the request from `pippin push csr`."
)


def topic_of(certificate: x509.Certificate) -> str | None:
    """The certificate's MDM topic (its subject UID when it starts ``com.apple.mgmt``), or None."""
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.USER_ID):
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.decode("utf-8", "replace")
        if value.startswith(MDM_TOPIC_PREFIX):
            return value
    return None


def _check_apple_id(apple_id: str) -> str:
    check_text(apple_id, field="The Apple ID")  # before trimming, which would drop a line separator unseen
    problem = email_problem(apple_id.strip())
    if problem is not None:
        raise InvalidInput(
            f"The Apple ID {problem}; it must be the Apple ID you signed in to identity.apple.com with, the one "
            "that must renew the certificate.",
            hint="Pass it with --apple-id, e.g. --apple-id admin@example.com.",
        )
    return apple_id.strip()


def _push_certificate(data: bytes, *, now: datetime) -> tuple[x509.Certificate, str]:
    """The one MDM push certificate of ``data`` and its topic, checked for dates; refused otherwise."""
    if len(data) > MAX_CERTIFICATE_FILE_BYTES:
        raise InvalidInput(
            f"This file is larger than {MAX_CERTIFICATE_FILE_BYTES:,} bytes; a push certificate is about 2 kB.",
            hint=_WHERE,
        )
    certificates = load_certificates(data, expected=_EXPECTED, hint=_WHERE)
    pushing = [(certificate, topic) for certificate in certificates if (topic := topic_of(certificate))]
    if not pushing:
        subject = certificates[0].subject.rfc4514_string()[:200]
        raise InvalidInput(
            f"This certificate ({subject}) is not an MDM push certificate: its subject has no UID starting "
            f"{MDM_TOPIC_PREFIX}.",
            hint=_WHERE,
        )
    if len(pushing) > 1:
        raise InvalidInput(f"This file holds {len(pushing)} push certificates; upload one.", hint=_WHERE)
    certificate, topic = pushing[0]
    if certificate.not_valid_after_utc <= now:
        raise InvalidInput(
            f"This push certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d} UTC.",
            hint=f"Renew it at {PORTAL} (Renew, with the request from `pippin push csr`) and upload the new one.",
        )
    if certificate.not_valid_before_utc > now + CLOCK_SKEW_ALLOWANCE:
        raise InvalidInput(
            f"This push certificate is valid only from {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC.",
            hint="Check this machine's clock.",
        )
    return certificate, topic


def _match_key(row: PushCertificate | None, certificate: x509.Certificate, box: SecretBox) -> bool:
    """Whether the certificate holds the pending key (True) or the active one (False); refused otherwise."""
    if row is None or (row.pending_private_key_encrypted is None and row.private_key_encrypted is None):
        raise Conflict(
            "Pippin has no push certificate request this certificate could belong to: its private key would be "
            "missing.",
            hint="Run `pippin push csr`, give that request to the Apple Push Certificates Portal, and upload the "
            "certificate it issues.",
        )
    pending, active = row.pending_private_key_encrypted, row.private_key_encrypted
    if pending is not None and public_keys_match(certificate, open_private_key(pending, box)):
        return True
    if active is not None and public_keys_match(certificate, open_private_key(active, box)):
        return False
    made = f" (made {row.pending_created_at:%Y-%m-%d %H:%M} UTC)" if row.pending_created_at else ""
    raise InvalidInput(
        f"This certificate was made for another request: its public key is not the one of Pippin's request{made}.",
        hint=f"Upload the certificate Apple issued for the request from `pippin push csr` (run it again to see "
        f"that request), or give that request to {PORTAL} and upload what it issues.",
    )


def _topic_refusal(row: PushCertificate, topic: str) -> Conflict:
    apple_id = row.apple_id or "the Apple ID that created it"
    return Conflict(
        f"This certificate's topic is {topic}, but the active push certificate's is {row.topic}: a new "
        "certificate orphans every enrolled device (they can no longer be woken and must enroll again). "
        "Nothing was changed.",
        hint=f"Renew the certificate with topic {row.topic} at {PORTAL} using Apple ID {apple_id} (Renew, not "
        "Create a Certificate) and upload that one. Only to start over with a new topic on purpose, pass "
        "--replace-topic.",
    )


def _enrolled_devices(session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Enrollment).where(Enrollment.status == EnrollmentStatus.enrolled)
        )
        or 0
    )


def upload_certificate(
    session: Session,
    *,
    data: bytes,
    apple_id: str,
    box: SecretBox,
    actor: Actor,
    replace_topic: bool = False,
    now: datetime | None = None,
) -> PushCertificateUploadResult:
    """Make the push certificate in ``data`` (PEM or DER) the active one, with the key of the request it answers.

    ``apple_id`` is the Apple ID that created it at identity.apple.com (the one that must renew it). A renewal
    keeps the topic; another topic is refused (Conflict) unless ``replace_topic``, which is recorded. Everything
    is checked before anything changes; recorded in the audit log for ``actor`` in the caller's transaction.
    """
    now = now or utcnow()
    apple_id = _check_apple_id(apple_id)
    certificate, topic = _push_certificate(data, now=now)
    confirm_master_key(session, box)
    row = session.get(PushCertificate, PUSH_CERTIFICATE_ID, with_for_update=True)
    from_pending = _match_key(row, certificate, box)
    assert row is not None  # _match_key refuses a missing row
    digest = fingerprint(certificate)
    if not from_pending and digest == row.fingerprint:
        result = PushCertificateUploadResult(
            certificate=to_read(session, row, now=now),
            renewal=False,
            topic_replaced=False,
            warnings=["This certificate is already the active one; nothing was changed."],
        )
        return result
    previous_topic = row.topic
    topic_replaced = previous_topic is not None and previous_topic != topic
    if topic_replaced and not replace_topic:
        raise _topic_refusal(row, topic)
    warnings = []
    if topic_replaced:
        enrolled = _enrolled_devices(session)
        warnings.append(
            f"The topic changed from {previous_topic} to {topic}: the {enrolled} enrolled devices can no longer be "
            "woken by a push and must enroll again (erase them, or re-enroll them by hand)."
        )
    elif previous_topic is not None and row.apple_id and row.apple_id.casefold() != apple_id.casefold():
        warnings.append(
            f"The previous certificate was created with Apple ID {row.apple_id}; Apple renews a certificate only "
            f"for the Apple ID that created it. Pippin now remembers {apple_id} for the next renewal."
        )
    if from_pending:
        row.private_key_encrypted = row.pending_private_key_encrypted
        row.pending_private_key_encrypted = row.pending_csr_pem = row.pending_created_at = None
    renewal = previous_topic == topic
    row.certificate_pem = certificate_to_pem(certificate)
    row.topic = topic
    row.not_after = certificate.not_valid_after_utc
    row.fingerprint = digest
    row.apple_id = apple_id
    row.uploaded_at = now
    row.refused_reason = row.refused_at = None
    session.flush()
    days_left = math.floor((certificate.not_valid_after_utc - now) / timedelta(days=1))
    if days_left < WARNING_DAYS:
        warnings.append(
            f"This certificate expires in {days_left} days; renew it at {PORTAL} as {apple_id} before then."
        )
    audit.record_event(
        session,
        actor=actor,
        action=AuditAction.push_certificate_upload,
        target=topic,
        detail={
            "fingerprint": digest,
            "renewal": renewal,
            "topic_replaced": topic_replaced,
            "previous_topic": previous_topic,
            "not_after": row.not_after.isoformat(),
        },
        now=now,
    )
    logger.info(
        "push certificate uploaded",
        extra={"fields": {"topic": topic, "fingerprint": digest, "topic_replaced": topic_replaced}},
    )
    return PushCertificateUploadResult(
        certificate=to_read(session, row, now=now), renewal=renewal, topic_replaced=topic_replaced, warnings=warnings
    )


def load_push_identity(session: Session, *, box: SecretBox) -> PushIdentity | None:
    """The active push certificate with its key, unsealed, for the APNs client; None before the first upload.

    An expired or refused certificate is still returned (APNs will refuse it, and that refusal is recorded with
    :func:`record_certificate_refused`); ``not_after`` tells the client when it stops working.
    """
    row = session.get(PushCertificate, PUSH_CERTIFICATE_ID)
    if row is None or row.private_key_encrypted is None or row.certificate_pem is None:
        return None
    assert row.topic is not None and row.not_after is not None and row.fingerprint is not None
    key = open_private_key(row.private_key_encrypted, box)
    return PushIdentity(
        topic=row.topic,
        certificate_pem=row.certificate_pem.encode("ascii"),
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        not_after=row.not_after,
        fingerprint=row.fingerprint,
    )


def record_certificate_refused(session: Session, *, fingerprint: str, reason: str, at: datetime) -> bool:
    """Remember that APNs refused the certificate ``fingerprint`` (e.g. ``BadCertificate``, an expired
    certificate's TLS handshake failure), shown as ``refused_by_apns`` until a new certificate is uploaded.

    A refusal of a certificate that is no longer the active one (a renewal came meanwhile) is ignored: False.
    Not an admin's change, so not in the audit log (the APNs client logs it).
    """
    row = session.get(PushCertificate, PUSH_CERTIFICATE_ID, with_for_update=True)
    if row is None or row.fingerprint is None or row.fingerprint != fingerprint:
        return False
    row.refused_reason = reason[:MAX_REFUSAL_REASON_CHARS]
    row.refused_at = at
    session.flush()
    return True


def identity_for_pushes(session: Session, *, box: SecretBox, now: datetime) -> PushIdentity | None:
    """The certificate pushes may go out with: the active one, unless APNs refused it or it has expired.

    ``None`` makes pushes wait (``push/delivery.py``) until an admin uploads a certificate that works; `pippin push
    status` says why meanwhile. A test push (`pippin push test`) uses :func:`load_push_identity` instead, so an
    admin can see what APNs answers even to a refused certificate.
    """
    row = session.get(PushCertificate, PUSH_CERTIFICATE_ID)
    if row is None or row.refused_reason is not None or row.not_after is None or row.not_after <= now:
        return None
    return load_push_identity(session, box=box)


def push_certificate_refused(*, clock: Callable[[], datetime]) -> Callable[[Session, str, str], None]:
    """:func:`record_certificate_refused` in the shape the push sender calls it, at the time of ``clock``."""

    def record(session: Session, fingerprint: str, reason: str) -> None:
        record_certificate_refused(session, fingerprint=fingerprint, reason=reason, at=clock())

    return record
