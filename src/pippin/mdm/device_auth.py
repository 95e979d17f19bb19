"""Who sent a device request: the identity certificate Pippin issued, proven by the request itself.

Reference ``apple-mdm-protocol.md`` section 4. A device proves its SCEP identity in one of two ways:

- the ``Mdm-Signature`` header (the profile's ``SignMessage``): a detached CMS signature over the exact body, made
  with the identity's key, the certificate included (``mdm/signature.py`` reads and checks it);
- behind a TLS proxy that asked for the client certificate: the certificate the proxy forwards in the header
  named by ``PIPPIN_TRUSTED_CLIENT_CERT_HEADER``, believed only from a proxy in ``PIPPIN_TRUSTED_PROXIES``
  (RFC 9440 ``:base64-DER:``, or URL-escaped PEM as nginx's ``$ssl_client_escaped_cert``).

Either way the certificate must be issued by Pippin's SCEP CA, within its validity, recorded by fingerprint as
issued, not revoked, and bound to the UDID the message names: the first Authenticate binds an unbound identity,
after which it speaks for that device only (nanomdm's ``certauth``: device A's certificate never speaks for B).

What does not change between a device's requests is kept in :class:`CertificateCache` (bounded, least recently
used first out): the parsed certificate, its key, its fingerprint and the CA's verdict on it. The database is
still asked every time whether the certificate is revoked or bound elsewhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.orm import Session

from pippin.errors import InvalidInput
from pippin.mdm.identities import IdentityBinding, IdentityStore, IssuedIdentity
from pippin.mdm.signature import (
    SignatureRefused,
    check_body_digest,
    check_signature,
    decode_header,
    read_signature,
)

logger = logging.getLogger(__name__)

#: Certificates kept parsed; one per enrolled device that checked in lately. ~2 KB each.
CACHE_SIZE = 20_000
MAX_FORWARDED_CHARS = 16 * 1024


class DeviceAuthenticationRefused(InvalidInput):
    """The request does not prove an identity Pippin issued to this device (answered 400, never 401)."""


@dataclass
class CachedCertificate:
    """A certificate as parsed once: what every later request of the same device reuses."""

    certificate: x509.Certificate
    public_key: CertificatePublicKeyTypes
    fingerprint: str
    issuer: bytes
    serial: int
    not_before: datetime
    not_after: datetime
    #: Whether each CA (by its certificate's DER) issued this certificate.
    issued_by: dict[bytes, bool] = field(default_factory=dict)


class CertificateCache:
    """Parsed certificates by DER, at most ``size`` of them; safe across the server's threads."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, CachedCertificate] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, der: bytes) -> CachedCertificate:
        """The certificate ``der`` parsed (from the cache when seen before); refused when it is not one."""
        with self._lock:
            entry = self._entries.get(der)
            if entry is not None:
                self._entries.move_to_end(der)
                return entry
        try:
            certificate = x509.load_der_x509_certificate(der)
            entry = CachedCertificate(
                certificate=certificate,
                public_key=certificate.public_key(),
                fingerprint=hashlib.sha256(der).hexdigest(),
                issuer=certificate.issuer.public_bytes(),
                serial=certificate.serial_number,
                not_before=certificate.not_valid_before_utc,
                not_after=certificate.not_valid_after_utc,
            )
        except (ValueError, TypeError) as exc:
            raise DeviceAuthenticationRefused("The request's identity certificate cannot be read.") from exc
        with self._lock:
            self._entries[der] = entry
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return entry


@dataclass(frozen=True)
class AuthenticatedDevice:
    """The identity a request proved, before it is matched with the UDID the message names."""

    identity: IssuedIdentity
    certificate: CachedCertificate
    #: ``signature`` (Mdm-Signature) or ``proxy`` (a certificate a trusted proxy forwarded).
    method: str

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint


def _refuse(reason: str, message: str, *, fingerprint: str | None = None) -> DeviceAuthenticationRefused:
    # The fingerprint names a public certificate; nothing of the request's body or headers is logged.
    logger.warning(
        "device authentication refused: %s",
        reason,
        extra={"fields": {"reason": reason, "fingerprint": fingerprint}},
    )
    return DeviceAuthenticationRefused(message)


def _signed_certificate(body: bytes, header: str, cache: CertificateCache) -> CachedCertificate:
    try:
        parts = read_signature(decode_header(header))
        check_body_digest(parts, body)
        for der in parts.certificates:
            candidate = cache.get(der)
            if candidate.serial == parts.signer_serial and candidate.issuer == parts.signer_issuer:
                check_signature(parts, candidate.public_key)
                return candidate
    except SignatureRefused as exc:
        raise _refuse("bad signature", exc.message) from exc
    raise _refuse("signer certificate missing", "The Mdm-Signature does not include its signer's certificate.")


def read_forwarded_certificate(value: str) -> bytes:
    """The DER of a certificate as a proxy forwards it: RFC 9440 ``:base64:`` or URL-escaped PEM."""
    text = value.strip()
    if len(text) > MAX_FORWARDED_CHARS:
        raise _refuse("forwarded certificate too long", "The forwarded client certificate is too long.")
    try:
        if text.startswith(":") and text.endswith(":") and len(text) > 2:
            return base64.b64decode(text[1:-1], validate=True)
        pem = urllib.parse.unquote(text)
        begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
        if begin in pem and end in pem:
            inner = pem.split(begin, 1)[1].split(end, 1)[0]
            return base64.b64decode("".join(inner.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _refuse("forwarded certificate unreadable", "The forwarded client certificate cannot be read.") from exc
    raise _refuse("forwarded certificate unreadable", "The forwarded client certificate cannot be read.")


def _issued_by_authority(entry: CachedCertificate, authorities: Sequence[x509.Certificate]) -> bool:
    for authority in authorities:
        key = authority.public_bytes(Encoding.DER)
        verdict = entry.issued_by.get(key)
        if verdict is None:
            try:
                entry.certificate.verify_directly_issued_by(authority)
                verdict = True
            except (ValueError, TypeError, InvalidSignature):
                verdict = False
            entry.issued_by[key] = verdict
        if verdict:
            return True
    return False


def authenticate_device(
    session: Session,
    *,
    body: bytes,
    signature: str | None,
    forwarded_certificate: str | None,
    identities: IdentityStore,
    cache: CertificateCache,
    now: datetime,
) -> AuthenticatedDevice:
    """The issued identity that proves ``body``: by ``signature`` (the Mdm-Signature header) when present, else by
    ``forwarded_certificate`` (the caller passes it only when a trusted proxy sent it under the configured name).

    Refused (:class:`DeviceAuthenticationRefused`, logged) when neither proves an identity Pippin issued, valid now
    and not revoked. Whether the identity may speak for the message's UDID is :func:`check_device_binding`'s job.
    """
    if signature:
        entry, method = _signed_certificate(body, signature, cache), "signature"
    elif forwarded_certificate:
        entry, method = cache.get(read_forwarded_certificate(forwarded_certificate)), "proxy"
    else:
        raise _refuse("no identity", "The request carries no Mdm-Signature.")
    fingerprint = entry.fingerprint
    if not _issued_by_authority(entry, identities.authority_certificates(session)):
        raise _refuse(
            "foreign certificate", "The identity certificate was not issued by this server.", fingerprint=fingerprint
        )
    if not entry.not_before <= now <= entry.not_after:
        raise _refuse(
            "certificate outside validity",
            "The identity certificate is expired or not yet valid; enroll again.",
            fingerprint=fingerprint,
        )
    identity = identities.find(session, fingerprint)
    if identity is None:
        raise _refuse(
            "unknown certificate", "The identity certificate is not one this server issued.", fingerprint=fingerprint
        )
    if identity.revoked_at is not None:
        raise _refuse("revoked certificate", "The identity certificate was revoked.", fingerprint=fingerprint)
    return AuthenticatedDevice(identity=identity, certificate=entry, method=method)


def check_device_binding(
    session: Session,
    device: AuthenticatedDevice,
    *,
    udid: str,
    serial_number: str | None,
    identities: IdentityStore,
    may_bind: bool,
) -> IdentityBinding | None:
    """That ``device``'s identity speaks for ``udid``; with ``may_bind`` (Authenticate), an unbound identity is
    bound to it, after checking the challenge it was issued under was meant for this device, and the challenge's
    binding is returned. Refused when the identity is bound to another device, or unbound outside Authenticate."""
    identity = device.identity
    if identity.udid is not None:
        if identity.udid != udid:
            raise _refuse(
                "certificate of another device",
                "The identity certificate belongs to another device.",
                fingerprint=identity.fingerprint,
            )
        return identities.binding(session, identity) if may_bind else None
    if not may_bind:
        raise _refuse(
            "certificate not bound",
            "The identity certificate has not authenticated this device yet; send Authenticate first.",
            fingerprint=identity.fingerprint,
        )
    binding = identities.binding(session, identity)
    if (binding.udid is not None and binding.udid != udid) or (
        binding.serial_number is not None and serial_number is not None and binding.serial_number != serial_number
    ):
        raise _refuse(
            "certificate issued for another device",
            "The identity certificate was issued for another device.",
            fingerprint=identity.fingerprint,
        )
    identities.bind(session, identity, udid)
    return binding
