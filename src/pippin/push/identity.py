"""The push certificate as the APNs client presents it: its topic, the certificate and its private key.

The certificate's store (``push/certificate.py``) opens one from the database; the APNs client (``push/apns.py``)
takes one and keeps a connection per certificate, so a renewal (a new certificate, the same topic) opens a new
connection and the old one is closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class PushIdentity:
    """A push certificate with its key, unsealed, ready for a TLS client connection to APNs."""

    #: The certificate subject's UID, ``com.apple.mgmt.External.<uuid>``: every push names it in ``apns-topic``.
    topic: str
    certificate_pem: bytes
    #: Unencrypted PEM (PKCS#8); held in memory only, never logged (hidden from ``repr``).
    private_key_pem: bytes = field(repr=False)
    not_after: datetime
    #: SHA-256 of the certificate's DER, hex: tells one certificate from its renewal.
    fingerprint: str
