"""What push portal tests share: a test MDM vendor, and signed requests built the way a vendor builds them.

The request is built here with ``cryptography`` and ``plistlib``, independently of the simulator's parser:
the customer's CSR, the vendor's PKCS#1 v1.5 SHA-256 signature over its DER, the chain, the XML plist, base64.
"""

from __future__ import annotations

import base64
import functools
import plistlib
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

APPLE_ID = "admin@example.com"


@dataclass(frozen=True)
class Vendor:
    """A test MDM vendor certificate as the simulator issued it, with its key and the chain to send."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    chain_pem: str


def get_vendor(portal: httpx.Client, name: str = "Pippin Test Vendor") -> Vendor:
    response = portal.post("/portal/push/vendor-certificates", json={"vendor_name": name})
    assert response.status_code == 201, response.text
    body = response.json()
    key = serialization.load_pem_private_key(body["private_key_pem"].encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    certificate = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
    return Vendor(certificate=certificate, key=key, chain_pem=body["chain_pem"])


@functools.cache
def customer_key(index: int = 0) -> rsa.RSAPrivateKey:
    """The customer's push key (made beside the MDM server, never sent anywhere); cached per index."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def csr_der(key: rsa.RSAPrivateKey | None = None, common_name: str = "Pippin push") -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key or customer_key(), hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER)


def sign(vendor: Vendor, csr: bytes) -> bytes:
    return vendor.key.sign(csr, padding.PKCS1v15(), hashes.SHA256())


def request_plist(csr: bytes, *, chain_pem: str, signature: bytes, overrides: dict[str, Any] | None = None) -> bytes:
    fields: dict[str, Any] = {
        "PushCertRequestCSR": base64.b64encode(csr).decode(),
        "PushCertCertificateChain": chain_pem,
        "PushCertSignature": base64.b64encode(signature).decode(),
    }
    fields.update(overrides or {})
    return plistlib.dumps(fields, fmt=plistlib.FMT_XML)


def signed_request(vendor: Vendor, csr: bytes | None = None) -> str:
    """The base64 text a vendor hands its customer to upload."""
    csr = csr or csr_der()
    return base64.b64encode(request_plist(csr, chain_pem=vendor.chain_pem, signature=sign(vendor, csr))).decode()


def upload(portal: httpx.Client, request: str, *, apple_id: str = APPLE_ID) -> httpx.Response:
    return portal.post("/portal/push/certificates", json={"apple_id": apple_id, "request": request})


def renew(portal: httpx.Client, identifier: str, request: str, *, apple_id: str = APPLE_ID) -> httpx.Response:
    return portal.post(f"/portal/push/certificates/{identifier}/renew", json={"apple_id": apple_id, "request": request})


def create_push_certificate(portal: httpx.Client, vendor: Vendor, *, apple_id: str = APPLE_ID) -> dict[str, Any]:
    response = upload(portal, signed_request(vendor), apple_id=apple_id)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
