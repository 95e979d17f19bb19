"""The simulator's certificate authorities, kept in its database so that every restart signs with the same keys.

The factory's device chain (``factory_ca.py``) and the push chains (``push_ca.py``) differ in how an authority is
made; how one is stored, found again and parsed is the same, and lives here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.orm import Session

from pippin.sim.models import SimCertificateAuthority


@dataclass(frozen=True)
class Authority:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def rsa_key(key_text: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(key_text.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):  # only the simulator writes these rows
        raise TypeError("a simulator key is not RSA")
    return key


def load_or_create(session: Session, name: str, *, create: Callable[[], Authority], now: datetime) -> Authority:
    """The authority stored as ``name``, or a new one from ``create`` stored in the caller's transaction."""
    row = session.get(SimCertificateAuthority, name)
    if row is not None:
        return _parse(row.certificate_pem, row.private_key_pem)
    authority = create()
    session.add(
        SimCertificateAuthority(
            name=name,
            certificate_pem=certificate_pem(authority.certificate),
            private_key_pem=private_key_pem(authority.key),
            created_at=now,
        )
    )
    session.flush()
    return authority


@functools.lru_cache(maxsize=32)
def _parse(certificate_text: str, key_text: str) -> Authority:
    """Parsed once per process: loading (and checking) an RSA private key costs more than a whole request."""
    return Authority(
        certificate=x509.load_pem_x509_certificate(certificate_text.encode("ascii")), key=rsa_key(key_text)
    )
