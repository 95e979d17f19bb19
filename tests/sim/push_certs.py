"""Push certificates for the simulated APNs' tests, made here with ``cryptography``, and clients that present them.

The simulator's Push Certificates Portal issues real ones; these tests need only what APNs checks: a CA the
server trusts, a certificate it issued whose subject UID names the topic, its validity. ``APNsTestClient`` is a
real HTTP/2 client (httpx over h2) with the push certificate loaded into its TLS context, as a provider's is.
"""

from __future__ import annotations

import json
import ssl
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def new_topic() -> str:
    return f"com.apple.mgmt.External.{uuid.uuid4()}"


@dataclass(frozen=True)
class PushCertificate:
    certificate: x509.Certificate
    key: PrivateKey

    @property
    def topic(self) -> str:
        values = self.certificate.subject.get_attributes_for_oid(NameOID.USER_ID)
        return str(values[0].value) if values else ""

    def write(self, directory: Path) -> tuple[Path, Path]:
        """The certificate and its unencrypted key as PEM files (what ``SSLContext.load_cert_chain`` reads)."""
        name = uuid.uuid4().hex
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        cert_path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert_path, key_path


@dataclass(frozen=True)
class PushCA:
    certificate: x509.Certificate
    key: PrivateKey

    @classmethod
    def create(cls, name: str = "Test Apple Push CA", *, valid_days: int = 3650) -> PushCA:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    def issue(
        self,
        topic: str | None = None,
        *,
        uid: str | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        rsa_key: bool = False,
    ) -> PushCertificate:
        """A push certificate whose subject UID is ``uid`` (default: ``topic``, default: a new MDM topic)."""
        key: PrivateKey = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if rsa_key
            else ec.generate_private_key(ec.SECP256R1())
        )
        now = datetime.now(UTC)
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, "APSP:test")]
        user_id = uid if uid is not None else (topic or new_topic())
        if user_id:
            attributes.insert(0, x509.NameAttribute(NameOID.USER_ID, user_id))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - timedelta(days=1))
            .not_valid_after(not_after or now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return PushCertificate(certificate, key)


def client_context(
    ca_path: Path,
    push: PushCertificate | None,
    directory: Path,
    *,
    tls_version: ssl.TLSVersion | None = None,
    alpn: list[str] | None = None,
) -> ssl.SSLContext:
    """A TLS client context trusting the simulator's TLS CA and presenting ``push`` (None: no certificate)."""
    context = ssl.create_default_context(cafile=str(ca_path))
    if push is not None:
        cert_path, key_path = push.write(directory)
        context.load_cert_chain(cert_path, key_path)
    if tls_version is not None:
        context.minimum_version = context.maximum_version = tls_version
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    return context


class APNsTestClient:
    """A provider's HTTP/2 connection to the simulated APNs, with one push certificate."""

    def __init__(self, url: str, context: ssl.SSLContext, *, http1: bool = False) -> None:
        self.http = httpx.Client(base_url=url, verify=context, http2=not http1, http1=http1, timeout=30)

    def __enter__(self) -> APNsTestClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def push(self, token: str, payload: Any = None, *, content: bytes | None = None, **headers: str) -> httpx.Response:
        """``POST /3/device/{token}``; keyword headers are spelled with underscores (``apns_expiration="0"``)."""
        body = content if content is not None else json.dumps(payload or {"mdm": "magic"}).encode()
        wire_headers = {name.replace("_", "-"): value for name, value in headers.items()}
        return self.http.post(f"/3/device/{token}", content=body, headers=wire_headers)
