"""Certificates and private keys as admins hand them over: PEM or DER files, told apart from the files they are not.

An admin juggles several files that look alike (the push certificate from Apple, the vendor certificate and its
key, the CSR, the DEP token). Reading one, Pippin says what the file is when it is the wrong one (a CSR, a DEP
token, a key without its certificate, a PEM cut short), so the error names the mix-up instead of "not a
certificate". Nothing here echoes the file's content: it may hold a private key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pippin.crypto.keys import RSA_KEY_BITS
from pippin.errors import InvalidInput

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----(.*?)-----END \1-----", re.DOTALL)
_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----")
_CERTIFICATE_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"})
_CSR_LABELS = frozenset({b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"})
_KEY_LABELS = frozenset({b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY"})
_CMS_LABELS = frozenset({b"PKCS7", b"CMS"})
# DER of the CMS content-type OIDs (RFC 5652): enveloped data (a DEP token) and signed data.
_ENVELOPED_DATA = bytes.fromhex("06092a864886f70d010703")
_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")
_DEP_FILE = "a DEP server token (the *_smime.p7m file from Apple Business Manager; `pippin dep upload-token` takes it)"


@dataclass(frozen=True)
class PEMBlock:
    label: bytes
    der: bytes


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, lowercase hex: how Pippin names one certificate."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def _blocks(data: bytes) -> list[PEMBlock] | None:
    """The PEM blocks of ``data``, or None when it holds no ``-----BEGIN`` line at all (DER, or not PEM)."""
    if _BEGIN.search(data) is None:
        return None
    blocks = []
    for match in _BLOCK.finditer(data):
        body = b"".join(line for line in match.group(2).splitlines() if line.strip() and b":" not in line)
        try:
            der = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(
                f"The {match.group(1).decode()} block of this file is damaged (its base64 does not decode).",
                hint="Download or export the file again; do not edit it by hand.",
            ) from None
        blocks.append(PEMBlock(match.group(1), der))
    started = len(_BEGIN.findall(data))
    if started > len(blocks):
        raise InvalidInput(
            "This PEM file is cut short: a -----BEGIN----- line has no matching -----END----- line.",
            hint="Download or copy the whole file again, up to and including its -----END----- line.",
        )
    return blocks


def _encrypted_key(block: PEMBlock, data: bytes) -> bool:
    return block.label == b"ENCRYPTED PRIVATE KEY" or (block.label in _KEY_LABELS and b"ENCRYPTED" in data)


def _describe_der(der: bytes) -> str:
    """What a DER file that is no certificate is, in words."""
    head = der[:64]
    if _ENVELOPED_DATA in head:
        return _DEP_FILE
    if _SIGNED_DATA in head:
        return "a signed CMS (PKCS#7) message"
    try:
        x509.load_der_x509_csr(der)
        return "a certificate signing request (CSR)"
    except ValueError:
        pass
    try:
        serialization.load_der_private_key(der, password=None)
        return "a private key, with no certificate"
    except (ValueError, TypeError):
        pass
    return "neither a PEM nor a DER certificate"


def _describe_text(data: bytes) -> str:
    lowered = data[:4096].lower()
    if b"pkcs7-mime" in lowered or b"smime.p7m" in lowered:
        return _DEP_FILE
    return "neither a PEM nor a DER certificate"


def _describe_blocks(blocks: list[PEMBlock], data: bytes) -> str:
    labels = {block.label for block in blocks}
    if labels & _CSR_LABELS:
        return "a certificate signing request (CSR)"
    if labels & _CMS_LABELS:
        return _DEP_FILE if any(_ENVELOPED_DATA in block.der[:64] for block in blocks) else "a CMS (PKCS#7) message"
    if labels & (_KEY_LABELS | {b"ENCRYPTED PRIVATE KEY"}):
        return "a private key, with no certificate"
    return "a PEM file with no certificate in it"


def load_certificates(data: bytes, *, expected: str, hint: str) -> list[x509.Certificate]:
    """Every certificate of ``data`` (PEM blocks in order, or one DER certificate); at least one.

    ``expected`` names the file the caller wanted, for the error ("the push certificate Apple issued"); ``hint``
    says where to get it. Any other kind of file is refused, saying what it is.
    """
    if not data.strip():
        raise InvalidInput(f"The file is empty; expected {expected}.", hint=hint)
    blocks = _blocks(data)
    if blocks is None:
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:
            described = _describe_text(data) if data[:1] != b"\x30" else _describe_der(data)
            raise InvalidInput(f"This file is {described}, not {expected}.", hint=hint) from None
    certificates = []
    for block in blocks:
        if block.label not in _CERTIFICATE_LABELS:
            continue
        try:
            certificates.append(x509.load_der_x509_certificate(block.der))
        except ValueError:
            raise InvalidInput(
                "A CERTIFICATE block of this file is damaged: it is not an X.509 certificate.",
                hint="Download or export the file again; do not edit it by hand.",
            ) from None
    if not certificates:
        raise InvalidInput(f"This file is {_describe_blocks(blocks, data)}, not {expected}.", hint=hint)
    return certificates


def _unprotected(what: str) -> InvalidInput:
    return InvalidInput(
        f"{what} is protected by a password.",
        hint="Write it out without one (`openssl pkey -in KEY.pem -out plain-key.pem`) and import that file; "
        "Pippin seals it with its master key, then delete the unprotected copy.",
    )


def _checked_rsa(key: object, what: str) -> rsa.RSAPrivateKey:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidInput(
            f"{what} is not an RSA key; Apple's push certificate requests are signed with RSA.",
            hint="Import the RSA key that goes with the certificate.",
        )
    if key.key_size < RSA_KEY_BITS:
        raise InvalidInput(f"{what} has {key.key_size} bits; at least {RSA_KEY_BITS} are needed.")
    return key


def load_private_key(data: bytes, *, what: str, hint: str) -> rsa.RSAPrivateKey:
    """The one unencrypted RSA private key of ``data`` (PEM: PKCS#8 or PKCS#1; or DER PKCS#8)."""
    if not data.strip():
        raise InvalidInput(f"{what} file is empty.", hint=hint)
    blocks = _blocks(data)
    if blocks is None:
        if data[:1] != b"\x30":
            raise InvalidInput(f"{what} file is not a PEM or DER private key.", hint=hint)
        try:
            return _checked_rsa(serialization.load_der_private_key(data, password=None), what)
        except TypeError:
            raise _unprotected(what) from None
        except ValueError:
            raise InvalidInput(f"{what} file is {_describe_der(data)}, not a private key.", hint=hint) from None
    keys = [block for block in blocks if block.label in _KEY_LABELS | {b"ENCRYPTED PRIVATE KEY"}]
    if not keys:
        described = "a certificate" if any(b.label in _CERTIFICATE_LABELS for b in blocks) else "no private key"
        raise InvalidInput(f"{what} file holds {described}, not a private key.", hint=hint)
    if len(keys) > 1:
        raise InvalidInput(f"{what} file holds {len(keys)} private keys; give the one key alone.", hint=hint)
    if _encrypted_key(keys[0], data):
        raise _unprotected(what)
    try:
        match = _BLOCK.search(data[data.find(b"-----BEGIN " + keys[0].label) :])
        assert match is not None  # found by _blocks a moment ago
        loaded = serialization.load_pem_private_key(match.group(0), password=None)
    except TypeError:
        raise _unprotected(what) from None
    except ValueError:
        raise InvalidInput(f"{what} file's key is damaged.", hint=hint) from None
    return _checked_rsa(loaded, what)
