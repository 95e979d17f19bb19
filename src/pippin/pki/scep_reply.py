"""RFC 8894's answer: CertRep, CMS SignedData by the CA carrying the SCEP attributes.

``cryptography`` signs CMS but cannot add custom signed attributes, and CertRep is made of them (RFC 8894
section 3.3.2): ``messageType`` 3, ``pkiStatus``, ``failInfo`` on FAILURE, the request's ``transactionID``
echoed, ``recipientNonce`` = the request's ``senderNonce``, and a fresh ``senderNonce``. On SUCCESS the content is
an EnvelopedData, encrypted to the requester's signer certificate with the cipher the request used (a client
that sent 3DES may know nothing else), wrapping a degenerate certs-only SignedData with the issued certificate.
The answer is signed with the request's digest, which the client has shown it can compute.

The structures are fixed, so they are assembled as DER here from parts encoded once: object identifiers and
algorithm identifiers from asn1crypto, names from ``cryptography``. Building them through asn1crypto's object
model instead copies every certificate several times over while re-tagging, and cost more than the CA's RSA
signature; an enrollment's SCEP exchange is on the path whose CPU the server budgets (a few milliseconds).
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime

from asn1crypto import algos, core
from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers import algorithms as cipher_algorithms

from pippin.crypto.certs import certificate_to_der
from pippin.pki.scep_messages import (
    FAIL_INFO_OID,
    HASHES,
    MESSAGE_TYPE_OID,
    PKI_STATUS_OID,
    RECIPIENT_NONCE_OID,
    SENDER_NONCE_OID,
    TRANSACTION_ID_OID,
    FailInfo,
    MessageType,
    PKIMessage,
    PKIStatus,
)

NONCE_BYTES = 16
#: Content ciphers an answer may be encrypted with, by asn1crypto's name: (key bytes, block bytes).
_CIPHERS = {"aes128_cbc": (16, 16), "aes192_cbc": (24, 16), "aes256_cbc": (32, 16), "tripledes_3key": (24, 8)}
#: What an answer uses when the request's cipher cannot be read (it then fails anyway) or is not in _CIPHERS.
_DEFAULT_CIPHER = "aes128_cbc"

_SEQUENCE, _SET, _INTEGER, _OCTET_STRING, _PRINTABLE_STRING, _UTC_TIME = 0x30, 0x31, 0x02, 0x04, 0x13, 0x17
#: [0], constructed: EXPLICIT content, IMPLICIT certificate and attribute sets.
_CONTEXT_0 = 0xA0
#: [0] IMPLICIT OCTET STRING, primitive: EncryptedContentInfo's encryptedContent.
_CONTEXT_0_PRIMITIVE = 0x80


def _oid(dotted: str) -> bytes:
    encoded: bytes = core.ObjectIdentifier(dotted).dump()
    return encoded


_DATA = _oid("1.2.840.113549.1.7.1")
_SIGNED_DATA = _oid("1.2.840.113549.1.7.2")
_ENVELOPED_DATA = _oid("1.2.840.113549.1.7.3")
_CONTENT_TYPE = _oid("1.2.840.113549.1.9.3")
_MESSAGE_DIGEST = _oid("1.2.840.113549.1.9.4")
_SIGNING_TIME = _oid("1.2.840.113549.1.9.5")
_RSA_PKCS1: bytes = algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"}).dump()
_RSA_KEY_TRANSPORT: bytes = asn1_cms.KeyEncryptionAlgorithm({"algorithm": "rsaes_pkcs1v15"}).dump()


def _tlv(tag: int, *parts: bytes) -> bytes:
    content = b"".join(parts)
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + content


def _integer(value: int) -> bytes:
    """A non-negative INTEGER: big-endian, with a leading zero when the top bit would read as a sign."""
    return _tlv(_INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


@functools.lru_cache(maxsize=8)
def _digest_algorithm(name: str) -> bytes:
    encoded: bytes = algos.DigestAlgorithm({"algorithm": name}).dump()
    return encoded


def _issuer_and_serial(certificate: x509.Certificate) -> bytes:
    return _tlv(_SEQUENCE, certificate.issuer.public_bytes(), _integer(certificate.serial_number))


def _content_info(content_type: bytes, content: bytes) -> bytes:
    return _tlv(_SEQUENCE, content_type, _tlv(_CONTEXT_0, content))


def _cipher_of(request: PKIMessage) -> str:
    try:
        info = asn1_cms.ContentInfo.load(request.enveloped_data)
        name = info["content"]["encrypted_content_info"]["content_encryption_algorithm"]["algorithm"].native
    except (ValueError, TypeError, KeyError):
        return _DEFAULT_CIPHER
    return name if name in _CIPHERS else _DEFAULT_CIPHER


def degenerate_certificates(certificates: list[x509.Certificate]) -> bytes:
    """A certs-only SignedData (version 1, no digest, no content, no signers), DER: how SCEP hands over certificates."""
    signed = _tlv(
        _SEQUENCE,
        _integer(1),
        _tlv(_SET),
        _tlv(_SEQUENCE, _DATA),
        _tlv(_CONTEXT_0, *(certificate_to_der(certificate) for certificate in certificates)),
        _tlv(_SET),
    )
    return _content_info(_SIGNED_DATA, signed)


def envelope(content: bytes, *, recipient: x509.Certificate, cipher: str) -> bytes:
    """``content`` as CMS EnvelopedData (DER) to ``recipient``: RSA PKCS#1 v1.5 key transport, a CBC cipher."""
    key_bytes, block_bytes = _CIPHERS[cipher]
    key, iv = os.urandom(key_bytes), os.urandom(block_bytes)
    algorithm = TripleDES(key) if cipher == "tripledes_3key" else cipher_algorithms.AES(key)
    padder = symmetric_padding.PKCS7(block_bytes * 8).padder()
    padded = padder.update(content) + padder.finalize()
    encryptor = Cipher(algorithm, modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    recipient_key = recipient.public_key()
    if not isinstance(recipient_key, rsa.RSAPublicKey):
        raise TypeError("read_pki_message accepts RSA signers only")
    content_algorithm: bytes = algos.EncryptionAlgorithm(
        {"algorithm": cipher, "parameters": core.OctetString(iv)}
    ).dump()
    recipient_info = _tlv(
        _SEQUENCE,
        _integer(0),
        _issuer_and_serial(recipient),
        _RSA_KEY_TRANSPORT,
        _tlv(_OCTET_STRING, recipient_key.encrypt(key, padding.PKCS1v15())),
    )
    enveloped = _tlv(
        _SEQUENCE,
        _integer(0),
        _tlv(_SET, recipient_info),
        _tlv(_SEQUENCE, _DATA, content_algorithm, _tlv(_CONTEXT_0_PRIMITIVE, encrypted)),
    )
    return _content_info(_ENVELOPED_DATA, enveloped)


def _attribute(oid: bytes, value: bytes) -> bytes:
    return _tlv(_SEQUENCE, oid, _tlv(_SET, value))


def _printable(text: str) -> bytes:
    return _tlv(_PRINTABLE_STRING, text.encode("ascii"))


def _signed_attributes(
    request: PKIMessage, *, content_digest: bytes, status: PKIStatus, fail_info: FailInfo | None, now: datetime
) -> list[bytes]:
    attributes = [
        _attribute(_CONTENT_TYPE, _DATA),
        _attribute(_SIGNING_TIME, _tlv(_UTC_TIME, now.astimezone(UTC).strftime("%y%m%d%H%M%SZ").encode())),
        _attribute(_MESSAGE_DIGEST, _tlv(_OCTET_STRING, content_digest)),
        _attribute(_oid(MESSAGE_TYPE_OID), _printable(str(int(MessageType.cert_rep)))),
        _attribute(_oid(PKI_STATUS_OID), _printable(str(int(status)))),
        # Echoed as it came; read_pki_message let through only short printable text (PrintableString's own
        # alphabet is narrower, yet clients compare the bytes they sent, so they are returned unchanged).
        _attribute(_oid(TRANSACTION_ID_OID), _tlv(_PRINTABLE_STRING, request.transaction_id.encode("utf-8"))),
        _attribute(_oid(SENDER_NONCE_OID), _tlv(_OCTET_STRING, os.urandom(NONCE_BYTES))),
        _attribute(_oid(RECIPIENT_NONCE_OID), _tlv(_OCTET_STRING, request.sender_nonce)),
    ]
    if fail_info is not None:
        attributes.append(_attribute(_oid(FAIL_INFO_OID), _printable(str(int(fail_info)))))
    return sorted(attributes)  # DER orders a SET OF by its encodings


def build_cert_rep(
    request: PKIMessage,
    *,
    ca_certificate: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    now: datetime,
    issued: x509.Certificate | None = None,
    fail_info: FailInfo | None = None,
) -> bytes:
    """The CertRep (DER) answering ``request``: SUCCESS with ``issued``, or FAILURE with ``fail_info``."""
    if (issued is None) == (fail_info is None):
        raise ValueError("a CertRep carries either an issued certificate or a failInfo")
    digest_name = request.digest_algorithm if request.digest_algorithm in HASHES else "sha256"
    hash_algorithm = HASHES[digest_name]()
    content = b""
    if issued is not None:
        content = envelope(
            degenerate_certificates([issued]), recipient=request.signer_certificate, cipher=_cipher_of(request)
        )
    digest = hashes.Hash(hash_algorithm)
    digest.update(content)
    status = PKIStatus.success if issued is not None else PKIStatus.failure
    attributes = _signed_attributes(
        request, content_digest=digest.finalize(), status=status, fail_info=fail_info, now=now
    )
    # The signature covers the attributes as a SET OF; SignerInfo carries the same bytes under [0].
    signature = ca_key.sign(_tlv(_SET, *attributes), padding.PKCS1v15(), hash_algorithm)
    signer_info = _tlv(
        _SEQUENCE,
        _integer(1),
        _issuer_and_serial(ca_certificate),
        _digest_algorithm(digest_name),
        _tlv(_CONTEXT_0, *attributes),
        _RSA_PKCS1,
        _tlv(_OCTET_STRING, signature),
    )
    # FAILURE carries no content (RFC 8894 section 3.3.2): the encapsulated content info is the type alone.
    encapsulated = (
        _tlv(_SEQUENCE, _DATA, _tlv(_CONTEXT_0, _tlv(_OCTET_STRING, content))) if content else _tlv(_SEQUENCE, _DATA)
    )
    signed = _tlv(
        _SEQUENCE,
        _integer(1),
        _tlv(_SET, _digest_algorithm(digest_name)),
        encapsulated,
        _tlv(_CONTEXT_0, certificate_to_der(ca_certificate)),
        _tlv(_SET, signer_info),
    )
    return _content_info(_SIGNED_DATA, signed)
