"""A small stand-in for Apple's certificate authorities: it issues MDM vendor certificates and push certificates.

A push certificate is issued for a CSR the way Apple's portal does: the CSR's key, a subject of its own naming the
topic as UID (OID 0.9.2342.19200300.100.1.1, ``com.apple.mgmt.External.<uuid>``), a year's validity. The keys are
made once per run.
"""

from __future__ import annotations

import base64
import functools
import plistlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from pippin.crypto.keys import generate_private_key

PushCA = tuple[rsa.RSAPrivateKey, x509.Certificate, rsa.RSAPrivateKey, x509.Certificate]


def new_topic() -> str:
    return f"com.apple.mgmt.External.{uuid.uuid4()}"


def _name(common_name: str, **extra: str) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if "uid" in extra:
        attributes.insert(0, x509.NameAttribute(NameOID.USER_ID, extra["uid"]))
    attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, "US"))
    return x509.Name(attributes)


def _issue(
    subject: x509.Name,
    public_key: Any,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(public_key)
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") | 1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


@functools.cache
def authority() -> PushCA:
    """(root key, root, intermediate key, intermediate): the test's 'Apple Root CA' and its issuing CA."""
    now = datetime.now(UTC)
    root_key, intermediate_key = generate_private_key(), generate_private_key()
    root = _issue(
        _name("Test Apple Root CA"),
        root_key.public_key(),
        None,
        root_key,
        ca=True,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=3650),
    )
    intermediate = _issue(
        _name("Test Apple Application Integration CA"),
        intermediate_key.public_key(),
        root,
        root_key,
        ca=True,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=3000),
    )
    return root_key, root, intermediate_key, intermediate


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def issue_push_certificate(
    csr_pem: bytes | str,
    *,
    topic: str | None = None,
    not_before: datetime | None = None,
    valid_for: timedelta = timedelta(days=365),
) -> x509.Certificate:
    """The push certificate Apple would issue for ``csr_pem``: its key, the topic as subject UID."""
    _, _, intermediate_key, intermediate = authority()
    csr = x509.load_pem_x509_csr(csr_pem.encode() if isinstance(csr_pem, str) else csr_pem)
    start = not_before or datetime.now(UTC) - timedelta(minutes=1)
    topic = topic or new_topic()
    return _issue(
        _name(f"APSP:{uuid.uuid4()}", uid=topic),
        csr.public_key(),
        intermediate,
        intermediate_key,
        ca=False,
        not_before=start,
        not_after=start + valid_for,
    )


def issue_vendor_certificate(
    key: rsa.RSAPrivateKey, *, valid_for: timedelta = timedelta(days=365), not_before: datetime | None = None
) -> x509.Certificate:
    """An MDM vendor certificate for ``key`` (what Apple's developer portal issues as ``mdm.cer``)."""
    _, _, intermediate_key, intermediate = authority()
    start = not_before or datetime.now(UTC) - timedelta(minutes=1)
    return _issue(
        _name("MDM Vendor: Example Org"),
        key.public_key(),
        intermediate,
        intermediate_key,
        ca=False,
        not_before=start,
        not_after=start + valid_for,
    )


def read_signed_request(content: bytes) -> tuple[x509.CertificateSigningRequest, list[x509.Certificate]]:
    """What Apple's portal reads from a ``PushCertificateRequest``: the CSR and the chain, once the signature over
    the CSR's DER verifies against the first certificate of the chain (raises otherwise)."""
    request = plistlib.loads(base64.b64decode(content, validate=True), fmt=plistlib.FMT_XML)
    assert set(request) == {"PushCertRequestCSR", "PushCertCertificateChain", "PushCertSignature"}
    csr_der = base64.b64decode(request["PushCertRequestCSR"], validate=True)
    chain = x509.load_pem_x509_certificates(request["PushCertCertificateChain"].encode())
    signer = chain[0].public_key()
    assert isinstance(signer, rsa.RSAPublicKey)
    signer.verify(base64.b64decode(request["PushCertSignature"]), csr_der, padding.PKCS1v15(), hashes.SHA256())
    return x509.load_der_x509_csr(csr_der), chain
