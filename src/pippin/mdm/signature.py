"""The ``Mdm-Signature`` header: a detached CMS SignedData over the request body, read and checked.

Reference ``apple-mdm-protocol.md`` section 4: the value is base64 of a DER ContentInfo holding a SignedData with
no encapsulated content, the signer's certificate, and one SignerInfo whose signed attributes carry the body's
digest (``messageDigest``). The signature is over the DER of those attributes (re-tagged from ``[0]`` to SET);
a valid signature alone proves nothing about the body, so ``messageDigest`` is compared with the body's digest
too (the check the 2026 updates, section 4 item 12, found missing in a Python peer).

Parsing the whole CMS with asn1crypto costs about 440 µs per check-in (the 2026 updates, section 1), more than a
Go MDM spends on the whole request. Every Mdm-Signature has the same fixed DER shape, so :func:`read_signature`
slices it with a small definite-length DER reader and hands anything it does not know (BER, several signers,
a subject key identifier) to asn1crypto, which yields the same :class:`SignatureParts`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

from asn1crypto import cms as asn1_cms
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from pippin.errors import InvalidInput

#: A real Mdm-Signature is 2-3 KB (one certificate); anything past this is not one.
MAX_SIGNATURE_CHARS = 16 * 1024

_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")  # OID 1.2.840.113549.1.7.2, encoded
_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_DATA = "1.2.840.113549.1.7.1"

_DIGESTS: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "1.3.14.3.2.26": ("sha1", hashes.SHA1),
    "2.16.840.1.101.3.4.2.1": ("sha256", hashes.SHA256),
    "2.16.840.1.101.3.4.2.2": ("sha384", hashes.SHA384),
    "2.16.840.1.101.3.4.2.3": ("sha512", hashes.SHA512),
    "2.16.840.1.101.3.4.2.4": ("sha224", hashes.SHA224),
}
_RSA = {
    "1.2.840.113549.1.1.1",  # rsaEncryption: the digest algorithm says which hash
    "1.2.840.113549.1.1.5",
    "1.2.840.113549.1.1.11",
    "1.2.840.113549.1.1.12",
    "1.2.840.113549.1.1.13",
    "1.2.840.113549.1.1.14",
}
_ECDSA = {
    "1.2.840.10045.4.1",
    "1.2.840.10045.4.3.1",
    "1.2.840.10045.4.3.2",
    "1.2.840.10045.4.3.3",
    "1.2.840.10045.4.3.4",
}


class SignatureRefused(InvalidInput):
    """The Mdm-Signature is not a signature of this body that Pippin can check."""


@dataclass(frozen=True)
class SignatureParts:
    """What checking a detached signature needs, as the header carried it."""

    certificates: tuple[bytes, ...]
    #: The signer's issuer (DER of the Name) and serial number, to pick its certificate among ``certificates``.
    signer_issuer: bytes
    signer_serial: int
    digest_algorithm: str
    #: The signed attributes as signed: DER of a SET (tag 0x31).
    signed_attributes: bytes
    message_digest: bytes
    signature_algorithm: str
    signature: bytes


class _Unknown(Exception):
    """A shape the lean reader does not know: asn1crypto reads it instead."""


def _tlv(data: bytes, offset: int, end: int) -> tuple[int, int, int]:
    """The tag, the start of the value and the end of the value of the DER element at ``offset``."""
    if offset + 2 > end:
        raise _Unknown
    tag = data[offset]
    first = data[offset + 1]
    if first < 0x80:
        start, length = offset + 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 3:  # indefinite length (BER), or larger than any header could be
            raise _Unknown
        start = offset + 2 + count
        length = int.from_bytes(data[offset + 2 : start], "big")
    if start + length > end:
        raise _Unknown
    return tag, start, start + length


def _expect(data: bytes, offset: int, end: int, tag: int) -> tuple[int, int]:
    """The start and end of the value of the element at ``offset``, which must have ``tag``.

    :func:`_tlv` written out again: this runs a few dozen times per check-in, and a call is most of its cost.
    """
    if offset + 2 > end or data[offset] != tag:
        raise _Unknown
    first = data[offset + 1]
    if first < 0x80:
        start, stop = offset + 2, offset + 2 + first
    else:
        count = first & 0x7F
        if count == 0 or count > 3:
            raise _Unknown
        start = offset + 2 + count
        stop = start + int.from_bytes(data[offset + 2 : start], "big")
    if stop > end:
        raise _Unknown
    return start, stop


@lru_cache(maxsize=128)
def _dotted(value: bytes) -> str:
    """An OID's dotted form; the few that signatures use are decoded once."""
    if not value:
        raise _Unknown
    parts = [*divmod(value[0], 40)] if value[0] < 80 else [2, value[0] - 80]
    number = 0
    for byte in value[1:]:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    return ".".join(map(str, parts))


def _oid(data: bytes, offset: int, end: int) -> tuple[str, int]:
    start, stop = _expect(data, offset, end, 0x06)
    return _dotted(data[start:stop]), stop


def _algorithm(data: bytes, offset: int, end: int) -> tuple[str, int]:
    start, stop = _expect(data, offset, end, 0x30)
    oid, _ = _oid(data, start, stop)
    return oid, stop


def _attributes(data: bytes, start: int, end: int) -> tuple[str | None, bytes | None]:
    content_type = digest = None
    offset = start
    while offset < end:
        attribute_start, attribute_end = _expect(data, offset, end, 0x30)
        oid, values = _oid(data, attribute_start, attribute_end)
        values_start, values_end = _expect(data, values, attribute_end, 0x31)
        if oid == _CONTENT_TYPE:
            content_type, _ = _oid(data, values_start, values_end)
        elif oid == _MESSAGE_DIGEST:
            digest_start, digest_stop = _expect(data, values_start, values_end, 0x04)
            digest = data[digest_start:digest_stop]
        offset = attribute_end
    return content_type, digest


def _lean_parts(der: bytes) -> SignatureParts:
    """The fixed shape: ContentInfo{signedData, [0]{SignedData{version, digestAlgorithms, {data}, [0] certs,
    {one SignerInfo with issuerAndSerialNumber and signed attributes}}}}."""
    end = len(der)
    start, stop = _expect(der, 0, end, 0x30)
    if stop != end or der[start : start + len(_SIGNED_DATA)] != _SIGNED_DATA:
        raise _Unknown
    start, stop = _expect(der, start + len(_SIGNED_DATA), stop, 0xA0)
    start, stop = _expect(der, start, stop, 0x30)
    _, _, offset = _tlv(der, start, stop)  # version
    _, _, offset = _tlv(der, offset, stop)  # digestAlgorithms
    encapsulated_start, offset = _expect(der, offset, stop, 0x30)
    if _oid(der, encapsulated_start, offset)[1] != offset:  # content attached: not a detached signature
        raise _Unknown
    certificates_start, offset = _expect(der, offset, stop, 0xA0)
    certificates = []
    position = certificates_start
    while position < offset:
        _, _, certificate_end = _tlv(der, position, offset)
        certificates.append(der[position:certificate_end])
        position = certificate_end
    signers_start, signers_end = _expect(der, offset, stop, 0x31)
    signer_start, signer_end = _expect(der, signers_start, signers_end, 0x30)
    if signer_end != signers_end:  # more than one signer
        raise _Unknown
    _, _, offset = _tlv(der, signer_start, signer_end)  # version
    sid_start, offset = _expect(der, offset, signer_end, 0x30)  # issuerAndSerialNumber ([0] SKI: not here)
    _, _, issuer_end = _tlv(der, sid_start, offset)
    serial_start, serial_end = _expect(der, issuer_end, offset, 0x02)
    digest_algorithm, attributes_at = _algorithm(der, offset, signer_end)
    attributes_start, attributes_end = _expect(der, attributes_at, signer_end, 0xA0)
    content_type, message_digest = _attributes(der, attributes_start, attributes_end)
    signature_algorithm, offset = _algorithm(der, attributes_end, signer_end)
    signature_start, signature_end = _expect(der, offset, signer_end, 0x04)
    if content_type != _DATA or message_digest is None:
        raise SignatureRefused("The Mdm-Signature's signed attributes do not name the body's digest.")
    # Signed as a SET: the same length and value under the universal tag.
    attributes = b"\x31" + der[attributes_at + 1 : attributes_end]
    return SignatureParts(
        certificates=tuple(certificates),
        signer_issuer=der[sid_start:issuer_end],
        signer_serial=int.from_bytes(der[serial_start:serial_end], "big", signed=True),
        digest_algorithm=digest_algorithm,
        signed_attributes=attributes,
        message_digest=message_digest,
        signature_algorithm=signature_algorithm,
        signature=der[signature_start:signature_end],
    )


def _asn1crypto_parts(der: bytes) -> SignatureParts:
    """Any shape asn1crypto reads (BER included), checked for what the lean reader assumes."""
    try:
        info = asn1_cms.ContentInfo.load(der)
        if info["content_type"].native != "signed_data":
            raise SignatureRefused("The Mdm-Signature is not a CMS SignedData.")
        signed = info["content"]
        if signed["encap_content_info"]["content"].native is not None:
            raise SignatureRefused("The Mdm-Signature carries content: it must be a detached signature.")
        signers = signed["signer_infos"]
        if len(signers) != 1:
            raise SignatureRefused("The Mdm-Signature must have exactly one signer.")
        signer = signers[0]
        sid = signer["sid"]
        if sid.name != "issuer_and_serial_number":
            raise SignatureRefused("The Mdm-Signature names its signer by key identifier, not by certificate.")
        attributes = signer["signed_attrs"]
        if not attributes:
            raise SignatureRefused("The Mdm-Signature has no signed attributes.")
        content_type = message_digest = None
        for attribute in attributes:
            kind = attribute["type"].dotted
            if kind == _CONTENT_TYPE:
                content_type = attribute["values"][0].dotted
            elif kind == _MESSAGE_DIGEST:
                message_digest = attribute["values"][0].native
        if content_type != _DATA or not isinstance(message_digest, bytes):
            raise SignatureRefused("The Mdm-Signature's signed attributes do not name the body's digest.")
        certificates = tuple(
            choice.chosen.dump() for choice in (signed["certificates"] or []) if choice.name == "certificate"
        )
        signed_attributes = attributes.untag().dump(force=True)
        return SignatureParts(
            certificates=certificates,
            signer_issuer=sid.chosen["issuer"].dump(force=True),
            signer_serial=sid.chosen["serial_number"].native,
            digest_algorithm=signer["digest_algorithm"]["algorithm"].dotted,
            signed_attributes=signed_attributes,
            message_digest=message_digest,
            signature_algorithm=signer["signature_algorithm"]["algorithm"].dotted,
            signature=signer["signature"].native,
        )
    except SignatureRefused:
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, KeyError… on malformed input
        raise SignatureRefused("The Mdm-Signature is not a CMS signature Pippin can read.") from exc


def decode_header(value: str) -> bytes:
    """The DER inside the header's value (standard base64; whitespace tolerated, as proxies fold it)."""
    if len(value) > MAX_SIGNATURE_CHARS:
        raise SignatureRefused("The Mdm-Signature header is too long to be a device's signature.")
    try:
        der = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        try:
            der = base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SignatureRefused("The Mdm-Signature header is not base64.") from exc
    if not der:
        raise SignatureRefused("The Mdm-Signature header is empty.")
    return der


def read_signature(der: bytes) -> SignatureParts:
    """The parts of a detached signature: the lean reader's when it knows the shape, else asn1crypto's."""
    try:
        return _lean_parts(der)
    except _Unknown:
        return _asn1crypto_parts(der)


def check_body_digest(parts: SignatureParts, body: bytes) -> None:
    """The signed ``messageDigest`` must be the body's digest with the signer's algorithm."""
    known = _DIGESTS.get(parts.digest_algorithm)
    if known is None:
        raise SignatureRefused("The Mdm-Signature uses a digest algorithm Pippin does not accept.")
    if not hmac.compare_digest(hashlib.new(known[0], body).digest(), parts.message_digest):
        raise SignatureRefused("The Mdm-Signature was not made over this request's body.")


def check_signature(parts: SignatureParts, public_key: CertificatePublicKeyTypes) -> None:
    """The signer's key signed the signed attributes (PKCS#1 v1.5 for RSA, as devices sign; or ECDSA)."""
    hash_algorithm = _DIGESTS[parts.digest_algorithm][1]()
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and parts.signature_algorithm in _RSA:
            public_key.verify(parts.signature, parts.signed_attributes, padding.PKCS1v15(), hash_algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and parts.signature_algorithm in _ECDSA:
            public_key.verify(parts.signature, parts.signed_attributes, ec.ECDSA(hash_algorithm))
        else:
            raise SignatureRefused("The Mdm-Signature uses a signature algorithm Pippin does not accept.")
    except InvalidSignature as exc:
        raise SignatureRefused("The Mdm-Signature does not verify with its signer's certificate.") from exc
