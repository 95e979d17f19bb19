"""Opened private keys and parsed certificates, kept in memory by what the database holds for them.

Opening a sealed key (AES-GCM, then parsing PKCS#8) and parsing its certificate costs more than the rest of a
SCEP request's own work, and the CA is the same for every request. The cache is keyed by the sealed bytes and the
certificate's DER as read from the database in the request's own transaction, and by the master key's
fingerprint: when another process replaces the CA or a rotation re-seals its key, the row's bytes change and the
next request opens the new ones. Nothing stale can be served, whichever process made the change.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from pippin.crypto.keys import open_private_key
from pippin.crypto.secrets import SecretBox
from pippin.errors import ConfigurationError

#: The CA and the server identity, plus room for the ones a rotation or a replacement leaves behind.
_CAPACITY = 8

_lock = threading.Lock()
_opened: OrderedDict[bytes, tuple[rsa.RSAPrivateKey, x509.Certificate]] = OrderedDict()


def _cache_key(box: SecretBox, sealed_key: bytes, certificate_der: bytes) -> bytes:
    digest = hashlib.sha256(box.fingerprint.encode("ascii"))
    for part in (sealed_key, certificate_der):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def open_key_pair(
    box: SecretBox, sealed_key: bytes, certificate_der: bytes
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """The private key sealed in ``sealed_key`` and the certificate ``certificate_der``, opened once per content."""
    key = _cache_key(box, sealed_key, certificate_der)
    with _lock:
        found = _opened.get(key)
        if found is not None:
            _opened.move_to_end(key)
            return found
    private_key = open_private_key(sealed_key, box)
    try:
        certificate = x509.load_der_x509_certificate(certificate_der)
    except ValueError as exc:
        raise ConfigurationError(
            "A stored certificate of Pippin's certificate authority is damaged.",
            hint="Restore the database from a backup.",
        ) from exc
    with _lock:
        _opened[key] = (private_key, certificate)
        while len(_opened) > _CAPACITY:
            _opened.popitem(last=False)
    return private_key, certificate
