"""Pippin's SCEP certificate authority: made on first use, its key sealed at rest, its certificate kept.

Every device identity is issued by this CA (reference ``apple-mdm-protocol.md`` section 6); devices fetch its
certificate with ``GetCACert`` and encrypt their requests to it, so it must allow key encipherment as well as
certificate signing. It lives for ten years, like micromdm/scep's; replacing it would strand every enrolled
device's identity, so nothing here replaces it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.crypto.certs import CLOCK_SKEW_ALLOWANCE, certificate_to_der
from pippin.crypto.keys import KeyGenerator, seal_private_key
from pippin.crypto.secrets import SecretBox
from pippin.pki.opened_keys import open_key_pair
from pippin.store.models import PKI_AUTHORITY_ID, PKIAuthority
from pippin.store.singleton_rows import lock_or_create

CA_VALIDITY = timedelta(days=3650)
CA_COMMON_NAME = "Pippin Device Identity CA"


@dataclass(frozen=True)
class Authority:
    """The CA's certificate and private key, opened."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey
    certificate_der: bytes
    #: SHA-256 of ``certificate_der``, lowercase hex.
    fingerprint: str


def random_serial() -> int:
    """A positive 159-bit serial number: unique without coordination, within RFC 5280's 20 octets."""
    return int.from_bytes(secrets.token_bytes(20), "big") >> 1 | 1


def key_usage(
    *, digital_signature: bool = False, key_encipherment: bool = False, key_cert_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def build_ca_certificate(key: rsa.RSAPrivateKey, *, now: datetime) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pippin"),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME),
        ]
    )
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        # keyEncipherment: SCEP clients encrypt their requests to the CA certificate (RFC 8894 section 2.2).
        .add_extension(key_usage(digital_signature=True, key_encipherment=True, key_cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )


def authority_of(row: PKIAuthority, box: SecretBox) -> Authority:
    """The CA of the authority row ``row``, opened (once per content: ``opened_keys.py``)."""
    private_key, certificate = open_key_pair(box, row.private_key_encrypted, row.certificate_der)
    return Authority(
        certificate=certificate,
        private_key=private_key,
        certificate_der=row.certificate_der,
        fingerprint=row.fingerprint,
    )


def load_authority(session: Session, *, box: SecretBox) -> Authority | None:
    """The CA, or ``None`` before anything made it."""
    row = session.get(PKIAuthority, PKI_AUTHORITY_ID)
    return None if row is None else authority_of(row, box)


def authority_certificate_der(session: Session) -> bytes | None:
    """The CA certificate's DER alone (``GetCACert``), or ``None`` before anything made it: the sealed key is
    neither read nor opened."""
    der: bytes | None = session.scalar(select(PKIAuthority.certificate_der).where(PKIAuthority.id == PKI_AUTHORITY_ID))
    return der


def ensure_authority(session: Session, *, box: SecretBox, generate_key: KeyGenerator, now: datetime) -> Authority:
    """The CA, made (key from ``generate_key``, sealed with ``box``) when there is none yet.

    Two processes making it at once end with one CA: the loser of the insert reads the winner's row.
    """
    found = load_authority(session, box=box)
    if found is not None:
        return found
    key = generate_key()
    certificate = build_ca_certificate(key, now=now)
    der = certificate_to_der(certificate)
    row = lock_or_create(
        session,
        PKIAuthority,
        PKI_AUTHORITY_ID,
        private_key_encrypted=seal_private_key(key, box),
        certificate_der=der,
        fingerprint=hashlib.sha256(der).hexdigest(),
        not_after=certificate.not_valid_after_utc,
    )
    session.flush()
    return authority_of(row, box)
