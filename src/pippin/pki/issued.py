"""Device identity certificates: issued by the CA from a device's CSR, and recorded by fingerprint.

What micromdm/scep issues (reference ``apple-mdm-protocol.md`` section 6), which is what MDM clients expect: the
subject the CSR asks for, valid from ten minutes ago (a device's clock may be a little behind) for
``scep_certificate_days``, KeyUsage digitalSignature (plus keyEncipherment when the CSR asks for it), and
extended key usage clientAuth only. Nothing else the CSR asks for (names, other extensions) is copied: the
certificate says what Pippin vouches for, nothing the device chose.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.crypto.certs import CLOCK_SKEW_ALLOWANCE, certificate_to_der
from pippin.pki.authority import Authority, key_usage, random_serial
from pippin.store.models import IssuedCertificate


def fingerprint_of(certificate_der: bytes) -> str:
    """How issued certificates are named: SHA-256 of the DER, lowercase hex."""
    return hashlib.sha256(certificate_der).hexdigest()


def find_issued_certificate(session: Session, fingerprint: str) -> IssuedCertificate | None:
    """The certificate Pippin issued with this fingerprint (lowercase hex SHA-256 of its DER), if any."""
    return session.execute(
        select(IssuedCertificate).where(IssuedCertificate.fingerprint == fingerprint.lower())
    ).scalar_one_or_none()


def build_device_certificate(
    csr: x509.CertificateSigningRequest,
    *,
    authority: Authority,
    now: datetime,
    valid_days: int,
    key_encipherment: bool,
) -> x509.Certificate:
    public_key = csr.public_key()
    issuer_key = authority.certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey) or not isinstance(issuer_key, rsa.RSAPublicKey):
        raise TypeError("device and CA keys are RSA (read_signing_request refuses any other)")
    not_after = min(now + timedelta(days=valid_days), authority.certificate.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(authority.certificate.subject)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True, key_encipherment=key_encipherment), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False)
        .sign(authority.private_key, hashes.SHA256())
    )


def issue_device_certificate(
    session: Session,
    csr: x509.CertificateSigningRequest,
    *,
    authority: Authority,
    challenge_id: int,
    now: datetime,
    valid_days: int,
    key_encipherment: bool = False,
    renewed_from: IssuedCertificate | None = None,
) -> tuple[x509.Certificate, IssuedCertificate]:
    """A certificate for ``csr``, recorded (in the caller's transaction) against ``challenge_id``'s binding."""
    certificate = build_device_certificate(
        csr, authority=authority, now=now, valid_days=valid_days, key_encipherment=key_encipherment
    )
    der = certificate_to_der(certificate)
    row = IssuedCertificate(
        serial=format(certificate.serial_number, "x"),
        fingerprint=fingerprint_of(der),
        subject=certificate.subject.rfc4514_string()[:1024],
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        certificate_der=der,
        challenge_id=challenge_id,
        renewed_from_id=renewed_from.id if renewed_from is not None else None,
        udid=renewed_from.udid if renewed_from is not None else None,
    )
    session.add(row)
    session.flush()
    return certificate, row
