"""The SCEP service (RFC 8894): what the CA advertises, its certificate, and the answer to each PKIOperation.

PKCSReq: the CSR's challenge is redeemed and the certificate issued and recorded in the caller's transaction,
so a challenge is spent only by a certificate that exists. RenewalReq: signed by a certificate Pippin issued,
still valid and not revoked, and answered with a new certificate for the same enrollment binding, no challenge
(RFC 8894 section 3.3.1.2). Anything that can be answered but not granted is answered with CertRep FAILURE and
the fitting ``failInfo``, and stores nothing; a message too damaged to answer raises
:class:`~pippin.pki.scep_messages.MalformedPKIMessage` for the route to refuse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from sqlalchemy.orm import Session

from pippin.crypto.certs import certificate_to_der
from pippin.crypto.keys import KeyGenerator
from pippin.crypto.secrets import SecretBox
from pippin.pki.authority import Authority, ensure_authority
from pippin.pki.challenges import ChallengeRefused, redeem_challenge
from pippin.pki.issued import find_issued_certificate, fingerprint_of, issue_device_certificate
from pippin.pki.scep_messages import (
    FailInfo,
    MessageType,
    PKIMessage,
    SCEPRefusal,
    open_envelope,
    read_pki_message,
    read_signing_request,
)
from pippin.pki.scep_reply import build_cert_rep

logger = logging.getLogger("pippin.pki.scep")

#: GetCACaps (RFC 8894 section 3.5.2): POST for PKIOperation, SHA-256 signatures, AES envelopes, the RFC's
#: behaviour as a whole, and RenewalReq. Clients pick POST and AES when they see these.
CA_CAPABILITIES = ("POSTPKIOperation", "SHA-256", "AES", "SCEPStandard", "Renewal")


@dataclass(frozen=True)
class SCEPAnswer:
    """A CertRep, and what it said (for the route's log and for tests)."""

    message: bytes
    transaction_id: str
    fail_info: FailInfo | None
    issued_fingerprint: str | None = None


def ca_capabilities() -> str:
    """The GetCACaps body: one keyword a line."""
    return "\n".join(CA_CAPABILITIES) + "\n"


def ca_certificate(session: Session, *, box: SecretBox, generate_key: KeyGenerator, now: datetime) -> bytes:
    """The GetCACert body: the CA certificate's DER (made on first use)."""
    return ensure_authority(session, box=box, generate_key=generate_key, now=now).certificate_der


def _issue(
    session: Session, request: PKIMessage, *, authority: Authority, now: datetime, certificate_days: int
) -> x509.Certificate:
    """The certificate ``request`` earns, recorded; or :class:`SCEPRefusal` with nothing stored."""
    if request.message_type not in (MessageType.pkcs_req, MessageType.renewal_req):
        raise SCEPRefusal(FailInfo.bad_request, f"messageType {request.message_type} is not supported.")
    csr_der = open_envelope(request, private_key=authority.private_key, certificate=authority.certificate)
    signing_request = read_signing_request(csr_der)
    if request.message_type == MessageType.renewal_req:
        previous = find_issued_certificate(session, fingerprint_of(request.signer_certificate_der))
        if previous is None:
            raise SCEPRefusal(FailInfo.bad_request, "The renewal is not signed by a certificate this server issued.")
        if previous.revoked_at is not None:
            raise SCEPRefusal(FailInfo.bad_request, "The renewal is signed by a revoked certificate.")
        if not previous.not_before <= now < previous.not_after:
            raise SCEPRefusal(FailInfo.bad_time, "The renewal is signed by a certificate that is not valid now.")
        certificate, _ = issue_device_certificate(
            session,
            signing_request.csr,
            authority=authority,
            challenge_id=previous.challenge_id,
            now=now,
            valid_days=certificate_days,
            key_encipherment=signing_request.wants_key_encipherment,
            renewed_from=previous,
        )
        return certificate
    if signing_request.challenge is None:
        raise SCEPRefusal(FailInfo.bad_request, "The request has no challenge password.")
    try:
        challenge = redeem_challenge(session, signing_request.challenge, now=now)
    except ChallengeRefused as exc:
        raise SCEPRefusal(FailInfo.bad_request, exc.message) from exc
    certificate, _ = issue_device_certificate(
        session,
        signing_request.csr,
        authority=authority,
        challenge_id=challenge.id,
        now=now,
        valid_days=certificate_days,
        key_encipherment=signing_request.wants_key_encipherment,
    )
    return certificate


def answer_pki_operation(
    session: Session,
    message: bytes,
    *,
    box: SecretBox,
    generate_key: KeyGenerator,
    now: datetime,
    certificate_days: int,
) -> SCEPAnswer:
    """The CertRep for the PKIMessage ``message``; raises ``MalformedPKIMessage`` for one that cannot be answered."""
    request = read_pki_message(message)
    authority = ensure_authority(session, box=box, generate_key=generate_key, now=now)
    try:
        if request.integrity_problem is not None:
            raise request.integrity_problem
        certificate = _issue(session, request, authority=authority, now=now, certificate_days=certificate_days)
    except SCEPRefusal as refusal:
        logger.info(
            "SCEP request refused: %s",
            refusal.message,
            extra={"fields": {"transaction_id": request.transaction_id, "fail_info": refusal.fail_info.name}},
        )
        reply = build_cert_rep(
            request,
            ca_certificate=authority.certificate,
            ca_key=authority.private_key,
            now=now,
            fail_info=refusal.fail_info,
        )
        return SCEPAnswer(message=reply, transaction_id=request.transaction_id, fail_info=refusal.fail_info)
    reply = build_cert_rep(
        request, ca_certificate=authority.certificate, ca_key=authority.private_key, now=now, issued=certificate
    )
    fingerprint = fingerprint_of(certificate_to_der(certificate))
    logger.info(
        "SCEP certificate issued",
        extra={"fields": {"transaction_id": request.transaction_id, "fingerprint": fingerprint}},
    )
    return SCEPAnswer(
        message=reply, transaction_id=request.transaction_id, fail_info=None, issued_fingerprint=fingerprint
    )
