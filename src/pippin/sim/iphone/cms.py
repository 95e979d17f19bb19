"""The CMS (RFC 5652) a device writes and reads: signed MachineInfo, Mdm-Signature, signed profiles, envelopes.

Written here with asn1crypto rather than shared with the server, so a mistake on one side of the wire cannot
hide the same mistake on the other. A real device signs its MachineInfo as BER with indefinite lengths and a
SHA-1 digest (apple-mdm-updates-2026.md §4.2): asn1crypto writes only DER, so the outer structures are framed by
hand around DER parts, as a streaming encoder would.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7

_DATA = "1.2.840.113549.1.7.1"
_CHUNK = 1000  # a constructed OCTET STRING in pieces, as streaming BER encoders write it
_MAX_CHAIN = 8
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class CMSError(ValueError):
    """A CMS structure that does not decode, verify or decrypt; the message says which."""


@dataclass(frozen=True)
class SignedContent:
    """What a verified SignedData carries: the content, the signer and every certificate it included."""

    content: bytes
    signer: x509.Certificate
    certificates: list[x509.Certificate]
    signed_attributes: dict[str, bytes]  # attribute OID (dotted) -> DER of its first value


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def sign_ber_sha1(content: bytes, *, key: PrivateKey, certificate: x509.Certificate) -> bytes:
    """An attached SignedData over ``content`` as iOS writes MachineInfo: BER, indefinite lengths, SHA-1."""
    attributes = cms.CMSAttributes(
        [
            {"type": "content_type", "values": ["data"]},
            {"type": "signing_time", "values": [cms.Time({"utc_time": datetime.now(UTC).replace(microsecond=0)})]},
            {"type": "message_digest", "values": [hashlib.sha1(content).digest()]},  # noqa: S324 (what iOS sends)
        ]
    )
    sha1 = hashes.SHA1()  # noqa: S303 (what iOS signs MachineInfo with)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature, algorithm = key.sign(attributes.dump(), ec.ECDSA(sha1)), "sha1_ecdsa"
    else:
        signature, algorithm = key.sign(attributes.dump(), asym_padding.PKCS1v15(), sha1), "rsassa_pkcs1v15"
    signer = _asn1_certificate(certificate)
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {"issuer_and_serial_number": {"issuer": signer.issuer, "serial_number": signer.serial_number}}
            ),
            "digest_algorithm": {"algorithm": "sha1"},
            "signed_attrs": attributes,
            "signature_algorithm": {"algorithm": algorithm},
            "signature": signature,
        }
    )
    chunks = [core.OctetString(content[i : i + _CHUNK]).dump() for i in range(0, len(content), _CHUNK)]
    encapsulated = _indefinite(0x30, core.ObjectIdentifier(_DATA).dump(), _indefinite(0xA0, _indefinite(0x24, *chunks)))
    signed_data = _indefinite(
        0x30,
        core.Integer(1).dump(),
        cms.DigestAlgorithms([{"algorithm": "sha1"}]).dump(),
        encapsulated,
        _indefinite(0xA0, certificate.public_bytes(serialization.Encoding.DER)),
        cms.SignerInfos([signer_info]).dump(),
    )
    return _indefinite(0x30, core.ObjectIdentifier("1.2.840.113549.1.7.2").dump(), _indefinite(0xA0, signed_data))


def sign_detached(body: bytes, *, key: PrivateKey, certificate: x509.Certificate) -> bytes:
    """A detached SignedData over ``body`` (SHA-256, signer certificate included): the ``Mdm-Signature``."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(body)
        .add_signer(certificate, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    )


def sign_attached(
    content: bytes,
    *,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    attributes: Sequence[tuple[str, core.Asn1Value]],
    digest: str = "sha256",
) -> bytes:
    """A DER SignedData over ``content`` with extra signed attributes (SCEP's), signed by ``certificate``."""
    hash_type = _HASHES[digest]
    attrs = cms.CMSAttributes(
        [
            {"type": "content_type", "values": ["data"]},
            {"type": "signing_time", "values": [cms.Time({"utc_time": datetime.now(UTC).replace(microsecond=0)})]},
            {"type": "message_digest", "values": [_digest(hash_type, content)]},
            *({"type": oid, "values": [value]} for oid, value in attributes),
        ]
    )
    signature = key.sign(attrs.dump(), asym_padding.PKCS1v15(), hash_type())
    signer = _asn1_certificate(certificate)
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": digest}],
            "encap_content_info": {"content_type": "data", "content": content},
            "certificates": [signer],
            "signer_infos": [
                {
                    "version": "v1",
                    "sid": cms.SignerIdentifier(
                        {"issuer_and_serial_number": {"issuer": signer.issuer, "serial_number": signer.serial_number}}
                    ),
                    "digest_algorithm": {"algorithm": digest},
                    "signed_attrs": attrs,
                    "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
                    "signature": signature,
                }
            ],
        }
    )
    der: bytes = cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()
    return der


def read_signed_data(
    data: bytes, *, detached_content: bytes | None = None, absent_content: bytes | None = None
) -> SignedContent:
    """Verify a SignedData (BER or DER): one signer, its messageDigest and signature; not yet whom it chains to.

    ``absent_content`` is what the signature covers when the SignedData encapsulates no content and none is
    ``detached_content`` (a SCEP CertRep of FAILURE or PENDING: RFC 8894 section 3.3.2); without it that is refused.
    """
    try:
        info = cms.ContentInfo.load(data, strict=True)
        if info["content_type"].native != "signed_data":
            raise CMSError("the CMS is not a SignedData")
        signed = info["content"]
        encapsulated = signed["encap_content_info"]["content"]
        content = detached_content if detached_content is not None else encapsulated.native
        if content is None:
            content = absent_content
        if content is None:
            raise CMSError("the SignedData carries no content")
        certificates = [x509.load_der_x509_certificate(c.chosen.dump()) for c in signed["certificates"] or []]
        signers = list(signed["signer_infos"])
        if len(signers) != 1:
            raise CMSError(f"the SignedData has {len(signers)} signers, not one")
        signer_info = signers[0]
        signer = _find_signer(signer_info["sid"], certificates)
        digest_name = signer_info["digest_algorithm"]["algorithm"].native
        hash_type = _HASHES.get(digest_name)
        if hash_type is None:
            raise CMSError(f"unsupported digest algorithm {digest_name}")
        attributes: dict[str, bytes] = {}
        signed_attrs = signer_info["signed_attrs"]
        if signed_attrs.native is not None and len(signed_attrs):
            for attribute in signed_attrs:
                attributes[attribute["type"].dotted] = attribute["values"][0].dump()
            digest = core.OctetString.load(attributes.get("1.2.840.113549.1.9.4", b"\x04\x00")).native
            if digest != _digest(hash_type, content):
                raise CMSError("the messageDigest does not match the content")
            to_verify = b"\x31" + _der_length(len(signed_attrs.contents)) + signed_attrs.contents
        else:
            to_verify = content
        _verify(signer.public_key(), signer_info["signature"].native, to_verify, hash_type())
    except CMSError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise CMSError(f"the CMS does not decode ({type(exc).__name__})") from None
    return SignedContent(content=content, signer=signer, certificates=certificates, signed_attributes=attributes)


def chains_to(
    signer: x509.Certificate, *, included: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]
) -> bool:
    """Whether ``signer`` is an anchor or is issued, through the ``included`` certificates, by one."""
    anchor_ders = {a.public_bytes(serialization.Encoding.DER) for a in anchors}
    current = signer
    for _ in range(_MAX_CHAIN):
        if current.public_bytes(serialization.Encoding.DER) in anchor_ders:
            return True
        if any(_issued_by(current, anchor) for anchor in anchors):
            return True
        parents = [c for c in included if c != current and _issued_by(current, c)]
        if not parents:
            return False
        current = parents[0]
    return False


def envelope(content: bytes, *, recipient: x509.Certificate, aes: bool) -> bytes:
    """An EnvelopedData of ``content`` for ``recipient``: AES-128-CBC when the peer offers AES, else 3DES."""
    if aes:
        return (
            pkcs7.PKCS7EnvelopeBuilder()
            .set_data(content)
            .add_recipient(recipient)
            .set_content_encryption_algorithm(algorithms.AES128)
            .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
        )
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CMSError("the recipient's key is not RSA")
    key, iv = os.urandom(24), os.urandom(8)
    padder = padding.PKCS7(64).padder()
    padded = padder.update(content) + padder.finalize()
    encryptor = Cipher(TripleDES(key), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    issuer = _asn1_certificate(recipient)
    enveloped = cms.EnvelopedData(
        {
            "version": "v0",
            "recipient_infos": [
                cms.RecipientInfo(
                    name="ktri",
                    value={
                        "version": "v0",
                        "rid": cms.RecipientIdentifier(
                            {
                                "issuer_and_serial_number": {
                                    "issuer": issuer.issuer,
                                    "serial_number": issuer.serial_number,
                                }
                            }
                        ),
                        "key_encryption_algorithm": {"algorithm": "rsaes_pkcs1v15"},
                        "encrypted_key": public_key.encrypt(key, asym_padding.PKCS1v15()),
                    },
                )
            ],
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": {"algorithm": "tripledes_3key", "parameters": core.OctetString(iv)},
                "encrypted_content": encrypted,
            },
        }
    )
    der: bytes = cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump()
    return der


def open_envelope(data: bytes, *, key: rsa.RSAPrivateKey) -> bytes:
    """The content of an EnvelopedData addressed to ``key`` (key transport; AES-CBC or 3DES content)."""
    try:
        info = cms.ContentInfo.load(data, strict=True)
        if info["content_type"].native != "enveloped_data":
            raise CMSError("the CMS is not an EnvelopedData")
        enveloped = info["content"]
        transport = [r.chosen for r in enveloped["recipient_infos"] if r.name == "ktri"]
        if not transport:
            raise CMSError("the EnvelopedData has no key-transport recipient")
        content_key = key.decrypt(transport[0]["encrypted_key"].native, asym_padding.PKCS1v15())
        encrypted_info = enveloped["encrypted_content_info"]
        algorithm: algos.EncryptionAlgorithm = encrypted_info["content_encryption_algorithm"]
        name = algorithm.encryption_cipher
        iv = algorithm.encryption_iv
        cipher = TripleDES(content_key) if name == "tripledes" else algorithms.AES(content_key)
        if name not in ("tripledes", "aes") or algorithm.encryption_mode != "cbc":
            raise CMSError(f"unsupported content encryption {algorithm['algorithm'].native}")
        decryptor = Cipher(cipher, modes.CBC(iv)).decryptor()
        padded = decryptor.update(encrypted_info["encrypted_content"].native) + decryptor.finalize()
        unpadder = padding.PKCS7(cipher.block_size).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except CMSError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise CMSError(f"the EnvelopedData does not open ({type(exc).__name__})") from None


def certificates_of(data: bytes) -> list[x509.Certificate]:
    """The certificates of a degenerate (certs-only) SignedData, as SCEP carries CA chains and issued certs."""
    try:
        info = cms.ContentInfo.load(data, strict=True)
        if info["content_type"].native != "signed_data":
            raise CMSError("the CMS is not a SignedData")
        return [x509.load_der_x509_certificate(c.chosen.dump()) for c in info["content"]["certificates"] or []]
    except CMSError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise CMSError(f"the certificate bundle does not decode ({type(exc).__name__})") from None


def _indefinite(tag: int, *parts: bytes) -> bytes:
    return bytes([tag, 0x80]) + b"".join(parts) + b"\x00\x00"


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _digest(hash_type: type[hashes.HashAlgorithm], content: bytes) -> bytes:
    digest = hashes.Hash(hash_type())
    digest.update(content)
    return digest.finalize()


def _asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _find_signer(sid: cms.SignerIdentifier, certificates: Sequence[x509.Certificate]) -> x509.Certificate:
    for certificate in certificates:
        parsed = _asn1_certificate(certificate)
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if parsed.serial_number == wanted["serial_number"].native and parsed.issuer == wanted["issuer"]:
                return certificate
        elif parsed.key_identifier == sid.chosen.native:
            return certificate
    raise CMSError("the signer's certificate is not in the SignedData")


def _verify(public_key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm) -> None:
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, asym_padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        else:
            raise CMSError("the signer's key is neither RSA nor EC")
    except InvalidSignature:
        raise CMSError("the signature does not verify") from None


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` signed ``certificate`` (checked by hand: SHA-1 chains are what Apple's devices carry)."""
    if certificate.issuer != issuer.subject or certificate.signature_hash_algorithm is None:
        return False
    try:
        _verify(
            issuer.public_key(),
            certificate.signature,
            certificate.tbs_certificate_bytes,
            certificate.signature_hash_algorithm,
        )
    except CMSError:
        return False
    return True
