"""Who is pushing: the topic of the push certificate a provider presented to the simulated APNs.

TLS has already checked the chain and validity against the real clock (see :mod:`pippin.sim.apns_tls`). What is
left is Apple's side of it: an MDM push certificate names its one topic in the subject's UID (OID
0.9.2342.19200300.100.1.1), which must start ``com.apple.mgmt`` (reference section 5, "Topic"); and its validity
is judged on the simulator's clock, which tests move forward, so that a certificate can expire in a test without
waiting a year.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

MDM_TOPIC_PREFIX = "com.apple.mgmt"


@dataclass(frozen=True)
class PushIdentity:
    """The outcome for one connection: its topic, or the 403 reason every request on it answers."""

    topic: str | None
    #: ``MissingProviderToken`` (no certificate) or ``BadCertificate`` (not an MDM push certificate).
    refusal: str | None = None
    #: True when the certificate (or its CA) is outside its validity on the simulator's clock: Apple fails the
    #: handshake then, so the server ends the connection before answering anything.
    expired: bool = False


def topic_of(certificate: x509.Certificate) -> str | None:
    """The subject's UID, if it names exactly one MDM topic."""
    values = certificate.subject.get_attributes_for_oid(NameOID.USER_ID)
    if len(values) != 1 or not isinstance(values[0].value, str):
        return None
    topic = values[0].value
    return topic if topic.startswith(MDM_TOPIC_PREFIX) else None


def _valid_at(certificate: x509.Certificate, now: datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def _issuer_of(certificate: x509.Certificate, cas: Sequence[x509.Certificate]) -> x509.Certificate | None:
    for ca in cas:
        if ca.subject != certificate.issuer:
            continue
        try:
            certificate.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return ca
    return None


def identify(der: bytes | None, *, trusted_push_cas: Sequence[x509.Certificate], now: datetime) -> PushIdentity:
    """The identity of a connection whose TLS handshake presented ``der`` (None: no client certificate)."""
    if der is None:
        return PushIdentity(topic=None, refusal="MissingProviderToken")
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return PushIdentity(topic=None, refusal="BadCertificate")
    # The CA that signed it directly, when it is among the trusted ones (a chain through an intermediate the
    # client sent is checked by TLS alone).
    issuer = _issuer_of(certificate, trusted_push_cas)
    if not _valid_at(certificate, now) or (issuer is not None and not _valid_at(issuer, now)):
        return PushIdentity(topic=None, expired=True)
    topic = topic_of(certificate)
    if topic is None:
        # TLS admitted it, so it chains to a trusted CA: a genuine certificate, but not an MDM push certificate.
        return PushIdentity(topic=None, refusal="BadCertificate")
    return PushIdentity(topic=topic)
