"""What a device is born with: its facts (UDID, model, OS) and its identity (key and certificate from the factory).

A real iPhone leaves the factory with both; a simulated one reads them from the simulated Apple's factory
(``GET /factory/devices/{serial}`` and ``…/identity.pem``), so any project's simulator can be the same device.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from pippin.sim.iphone.cms import PrivateKey
from pippin.sim.iphone.errors import SetupFailed

_PEM_KEY = re.compile(rb"-----BEGIN PRIVATE KEY-----.+?-----END PRIVATE KEY-----", re.DOTALL)
_FACT_LIMIT = 200


@dataclass(frozen=True)
class DeviceFacts:
    """The facts a device reports about itself, in MachineInfo and check-in messages."""

    serial_number: str
    udid: str
    product: str
    os_version: str
    build_version: str
    imei: str | None = None
    meid: str | None = None
    language: str = "en-US"

    @property
    def can_request_software_update(self) -> bool:
        """iOS 17 and later tell the server they can update during setup (MDM_CAN_REQUEST_SOFTWARE_UPDATE)."""
        major = self.os_version.split(".", 1)[0]
        return major.isdigit() and int(major) >= 17

    def updated_to(self, os_version: str, build_version: str) -> DeviceFacts:
        return replace(self, os_version=os_version, build_version=build_version)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceFacts:
        """Facts from the factory's JSON (or a saved state); a missing or wrongly typed fact is a clear error."""
        values: dict[str, Any] = {}
        for name in ("serial_number", "udid", "product", "os_version", "build_version"):
            value = data.get(name)
            if not isinstance(value, str) or not value or len(value) > _FACT_LIMIT:
                raise SetupFailed("factory", f"the device facts have no usable {name!r}")
            values[name] = value
        for name in ("imei", "meid", "language"):
            value = data.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > _FACT_LIMIT):
                raise SetupFailed("factory", f"the device fact {name!r} is not a short string")
            if value is not None:
                values[name] = value
        return cls(**values)


@dataclass(frozen=True)
class DeviceIdentity:
    """A private key and its certificate, with the chain of CAs above it (leaf-most first)."""

    key: PrivateKey  # RSA as Apple's device CA issues them; EC taken too, for other factories
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def to_pem(self) -> bytes:
        key = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        certificates = [self.certificate, *self.chain]
        return key + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)

    @classmethod
    def from_pem(cls, data: bytes) -> DeviceIdentity:
        """The factory's ``identity.pem``: a PKCS#8 RSA key, the device's certificate, then its CA chain."""
        found = _PEM_KEY.search(data)
        if found is None:
            raise SetupFailed("factory", "the identity PEM has no PRIVATE KEY block")
        try:
            key = serialization.load_pem_private_key(found.group(0), password=None)
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise SetupFailed("factory", "the identity PEM does not decode") from None
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise SetupFailed("factory", "the identity key is neither RSA nor EC")
        if _public_der(certificates[0].public_key()) != _public_der(key.public_key()):
            raise SetupFailed("factory", "the identity PEM's first certificate is not the key's")
        return cls(key=key, certificate=certificates[0], chain=tuple(certificates[1:]))


def _public_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def fetch_from_factory(client: httpx.Client, serial_number: str) -> tuple[DeviceFacts, DeviceIdentity]:
    """The device's facts and identity from the simulated Apple at ``client``'s base URL."""
    facts_response = _get(client, f"/factory/devices/{serial_number}")
    try:
        body = facts_response.json()
    except ValueError:
        raise SetupFailed("factory", "the factory's device facts are not JSON") from None
    if not isinstance(body, dict):
        raise SetupFailed("factory", "the factory's device facts are not a JSON object")
    facts = DeviceFacts.from_dict(body)
    if facts.serial_number != serial_number:
        raise SetupFailed("factory", f"the factory answered for {facts.serial_number!r}, not {serial_number!r}")
    identity = DeviceIdentity.from_pem(_get(client, f"/factory/devices/{serial_number}/identity.pem").content)
    return facts, identity


def _get(client: httpx.Client, path: str) -> httpx.Response:
    try:
        response = client.get(path)
    except httpx.HTTPError as exc:
        raise SetupFailed("factory", f"cannot reach the simulated Apple ({type(exc).__name__})") from None
    if response.status_code == 404:
        raise SetupFailed("factory", "the simulated Apple made no such device (404)")
    if response.status_code != 200:
        raise SetupFailed("factory", f"the factory answered HTTP {response.status_code}")
    return response
