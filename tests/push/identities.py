"""Push identities for tests: a real RSA key and a certificate with an MDM topic, as the certificate store opens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pippin.crypto.pem import fingerprint
from pippin.push.identity import PushIdentity


@cache
def _key(index: int) -> rsa.RSAPrivateKey:
    # Cached: a test run needs a few keys, and each takes a fifth of a second to make.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def push_identity(
    *, key_index: int = 0, topic: str | None = None, days: int = 365, other_key: bool = False
) -> PushIdentity:
    """A :class:`PushIdentity` whose certificate's subject UID is ``topic``; ``other_key`` pairs it with a key
    that is not the certificate's (a broken upload)."""
    topic = topic or f"com.apple.mgmt.External.{uuid.uuid4()}"
    key = _key(key_index)
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.USER_ID, topic), x509.NameAttribute(NameOID.COMMON_NAME, "MDM")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=abs(days) + 1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    paired = _key(key_index + 1) if other_key else key
    return PushIdentity(
        topic=topic,
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
        private_key_pem=paired.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        not_after=certificate.not_valid_after_utc,
        fingerprint=fingerprint(certificate),
    )
