"""What portal tests share: an MDM-side key pair and certificate, and shortcuts for common portal calls."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@functools.cache
def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def certificate_pem(
    key: rsa.RSAPrivateKey | None = None,
    *,
    not_before: datetime | None = None,
    days: int = 1,
    common_name: str = "depserver",
) -> str:
    """A self-signed certificate like the ones MDM servers upload (reference 1.1)."""
    key = key or rsa_key()
    start = not_before or datetime.now(UTC) - timedelta(minutes=10)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@functools.cache
def default_certificate_pem() -> str:
    """The one certificate most tests upload, so they can decrypt what the portal encrypts to it."""
    return certificate_pem()


def private_key_pem(key: rsa.RSAPrivateKey | None = None) -> bytes:
    return (key or rsa_key()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def create_server(portal: httpx.Client, name: str = "Pippin MDM", *, pem: str | None = None) -> str:
    response = portal.post(
        "/portal/mdm-servers",
        json={"name": name, "public_key_pem": pem or default_certificate_pem(), "admin_apple_id": "admin@example.com"},
    )
    assert response.status_code == 201, response.text
    server_uuid: str = response.json()["server_uuid"]
    return server_uuid


def create_devices(portal: httpx.Client, count: int, **fields: Any) -> list[str]:
    response = portal.post("/portal/devices", json={"count": count, **fields})
    assert response.status_code == 201, response.text
    serials: list[str] = response.json()["serials"]
    return serials


def assign(portal: httpx.Client, server_uuid: str, serials: list[str]) -> dict[str, Any]:
    response = portal.post("/portal/assignments", json={"server_uuid": server_uuid, "serials": serials})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
