"""The server identity that signs enrollment profiles: issued by Pippin's CA, its key sealed beside the CA's.

A signed profile shows as verified on the device (reference ``apple-mdm-protocol.md`` section 1.5); the chain up
to the CA goes into every signature, and the CA is one of the profile's anchor certificates. The identity is
made on first use and replaced when it comes within :data:`RENEW_BEFORE` of its end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session

from pippin.crypto.certs import CLOCK_SKEW_ALLOWANCE, certificate_to_der
from pippin.crypto.keys import KeyGenerator, seal_private_key
from pippin.crypto.secrets import SecretBox
from pippin.pki.authority import Authority, authority_of, ensure_authority, key_usage, random_serial
from pippin.pki.opened_keys import open_key_pair
from pippin.store.models import PKI_AUTHORITY_ID, PKIAuthority

IDENTITY_VALIDITY = timedelta(days=730)
RENEW_BEFORE = timedelta(days=30)
IDENTITY_COMMON_NAME = "Pippin Enrollment Profile Signing"


@dataclass(frozen=True)
class ServerIdentity:
    """The signing key, its certificate, and the certificates above it (the CA)."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def ca_certificate(self) -> x509.Certificate:
        """The SCEP CA that issued this identity: the last of its chain."""
        return self.chain[-1]


def build_identity_certificate(key: rsa.RSAPrivateKey, *, authority: Authority, now: datetime) -> x509.Certificate:
    public_key = key.public_key()
    issuer_key = authority.certificate.public_key()
    if not isinstance(issuer_key, rsa.RSAPublicKey):
        raise TypeError("Pippin's CA key is RSA")
    not_after = min(now + IDENTITY_VALIDITY, authority.certificate.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pippin"),
                    x509.NameAttribute(NameOID.COMMON_NAME, IDENTITY_COMMON_NAME),
                ]
            )
        )
        .issuer_name(authority.certificate.subject)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False)
        .sign(authority.private_key, hashes.SHA256())
    )


def _usable(row: PKIAuthority, now: datetime) -> bool:
    return (
        row.server_identity_key_encrypted is not None
        and row.server_identity_certificate_der is not None
        and row.server_identity_not_after is not None
        and row.server_identity_not_after - RENEW_BEFORE > now
    )


def _identity_of(row: PKIAuthority, authority: Authority, box: SecretBox) -> ServerIdentity:
    assert row.server_identity_key_encrypted is not None and row.server_identity_certificate_der is not None
    private_key, certificate = open_key_pair(
        box, row.server_identity_key_encrypted, row.server_identity_certificate_der
    )
    return ServerIdentity(private_key=private_key, certificate=certificate, chain=[authority.certificate])


def ensure_server_identity(
    session: Session, *, box: SecretBox, generate_key: KeyGenerator, now: datetime
) -> ServerIdentity:
    """The profile-signing identity, issued by the CA (made too if need be) when missing or about to end."""
    # One read of the row, held here: the session keeps rows only while something refers to them, so a
    # second get() would read it again.
    row = session.get(PKIAuthority, PKI_AUTHORITY_ID)
    if row is None:
        ensure_authority(session, box=box, generate_key=generate_key, now=now)
        row = session.get(PKIAuthority, PKI_AUTHORITY_ID)
        assert row is not None, "ensure_authority made the row"
    authority = authority_of(row, box)
    if _usable(row, now):
        return _identity_of(row, authority, box)
    # Lock, then look again: another process may have issued it while this one waited.
    row = session.get(PKIAuthority, PKI_AUTHORITY_ID, with_for_update=True, populate_existing=True)
    assert row is not None
    if not _usable(row, now):
        key = generate_key()
        certificate = build_identity_certificate(key, authority=authority, now=now)
        row.server_identity_key_encrypted = seal_private_key(key, box)
        row.server_identity_certificate_der = certificate_to_der(certificate)
        row.server_identity_not_after = certificate.not_valid_after_utc
        session.flush()
    return _identity_of(row, authority, box)
