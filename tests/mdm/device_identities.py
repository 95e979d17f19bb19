"""Device identities for check-in tests: a SCEP CA of the test's own, certificates it issues, and their records.

Until the SCEP CA's records exist in the store, :class:`IssuedIdentities` keeps the issued certificates in
memory behind the same :class:`~pippin.mdm.identities.IdentityStore` contract device authentication uses. Devices
sign their bodies as iOS does (``Mdm-Signature``: detached CMS, SHA-256, the certificate included).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import event
from sqlalchemy.orm import Session

from pippin.mdm.identities import IdentityBinding, IssuedIdentity
from tests.crypto.openssl_tokens import pooled_key_generator

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
TOPIC = "com.apple.mgmt.XServer.1c111c11-1c11-1c11-1c11-1c111c111c11"
_keys = pooled_key_generator()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass
class CertificateAuthority:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    serial: int = 1000

    def issue(
        self, common_name: str, *, not_before: datetime = NOW - timedelta(days=1), days: int = 365
    ) -> DeviceIdentity:
        key = _keys()
        self.serial += 1
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(self.serial)
            .not_valid_before(not_before)
            .not_valid_after(not_before + timedelta(days=days))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return DeviceIdentity(key=key, certificate=certificate)


def make_authority(name: str = "Pippin Test SCEP CA") -> CertificateAuthority:
    key = _keys()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(key=key, certificate=certificate)


@dataclass
class DeviceIdentity:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    def sign(self, body: bytes) -> str:
        """The Mdm-Signature header of ``body``."""
        signature = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(body)
            .add_signer(self.certificate, self.key, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
        )
        return base64.b64encode(signature).decode()

    def forwarded_pem(self) -> str:
        """The certificate as nginx forwards it (``$ssl_client_escaped_cert``)."""
        from urllib.parse import quote

        return quote(self.certificate.public_bytes(serialization.Encoding.PEM).decode())


@dataclass
class IssuedIdentities:
    """The CA's records of what it issued: an :class:`~pippin.mdm.identities.IdentityStore` for tests."""

    authority: CertificateAuthority
    records: dict[str, IssuedIdentity] = field(default_factory=dict)
    bindings: dict[str, IdentityBinding] = field(default_factory=dict)

    def record(
        self, identity: DeviceIdentity, *, binding: IdentityBinding | None = None, revoked: bool = False
    ) -> DeviceIdentity:
        self.records[identity.fingerprint] = IssuedIdentity(
            fingerprint=identity.fingerprint,
            udid=None,
            revoked_at=NOW if revoked else None,
            challenge_id=len(self.records) + 1,
        )
        self.bindings[identity.fingerprint] = binding or IdentityBinding()
        return identity

    def issue(self, name: str = "device", **binding: object) -> DeviceIdentity:
        return self.record(self.authority.issue(name), binding=IdentityBinding(**binding))  # type: ignore[arg-type]

    def revoke(self, identity: DeviceIdentity) -> None:
        record = self.records[identity.fingerprint]
        self.records[identity.fingerprint] = dataclasses.replace(record, revoked_at=NOW)

    def authority_certificates(self, session: Session) -> Sequence[x509.Certificate]:
        return (self.authority.certificate,)

    def find(self, session: Session, fingerprint: str) -> IssuedIdentity | None:
        return self.records.get(fingerprint)

    def binding(self, session: Session, identity: IssuedIdentity) -> IdentityBinding:
        return self.bindings[identity.fingerprint]

    def bind(self, session: Session, identity: IssuedIdentity, udid: str) -> None:
        # Bound when the transaction commits, as the real record would be: a refused request leaves it unbound.
        def bound(_session: Session) -> None:
            self.records[identity.fingerprint] = dataclasses.replace(self.records[identity.fingerprint], udid=udid)

        event.listen(session, "after_commit", bound, once=True)
