"""RFC 8894's answer: CertRep, CMS SignedData by the CA with the SCEP attributes, built with asn1crypto.

``cryptography`` signs CMS but cannot add custom signed attributes, and CertRep is made of them (RFC 8894
section 3.3.2): ``messageType`` 3, ``pkiStatus``, ``failInfo`` on FAILURE, the request's ``transactionID``
echoed, ``recipientNonce`` = the request's ``senderNonce``, and a fresh ``senderNonce``. On SUCCESS the content is
an EnvelopedData, encrypted to the requester's signer certificate with the cipher the request used (a client
that sent 3DES may know nothing else), wrapping a degenerate certs-only SignedData with the issued certificate.
The answer is signed with the request's digest, which the client shows it can verify.
"""

from __future__ import annotations

import os
from datetime import datetime

from asn1crypto import algos, core
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
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


def _attribute(oid: str, value: core.Asn1Value) -> asn1_cms.CMSAttribute:
    return asn1_cms.CMSAttribute({"type": oid, "values": [value]})


def _cipher_of(request: PKIMessage) -> str:
    try:
        info = asn1_cms.ContentInfo.load(request.enveloped_data)
        name = info["content"]["encrypted_content_info"]["content_encryption_algorithm"]["algorithm"].native
    except (ValueError, TypeError, KeyError):
        return _DEFAULT_CIPHER
    return name if name in _CIPHERS else _DEFAULT_CIPHER


def _issuer_and_serial(certificate_der: bytes) -> asn1_cms.IssuerAndSerialNumber:
    certificate = asn1_x509.Certificate.load(certificate_der)
    return asn1_cms.IssuerAndSerialNumber({"issuer": certificate.issuer, "serial_number": certificate.serial_number})


def degenerate_certificates(certificates: list[x509.Certificate]) -> bytes:
    """A certs-only SignedData (no content, no signers), DER: how SCEP hands over certificates."""
    signed = asn1_cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [],
            "encap_content_info": {"content_type": "data"},
            "certificates": [asn1_x509.Certificate.load(certificate_to_der(c)) for c in certificates],
            "signer_infos": [],
        }
    )
    der: bytes = asn1_cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    return der


def envelope(content: bytes, *, recipient_der: bytes, cipher: str) -> bytes:
    """``content`` as CMS EnvelopedData (DER) to the certificate ``recipient_der``: RSA PKCS#1 v1.5, CBC."""
    key_bytes, block_bytes = _CIPHERS[cipher]
    key, iv = os.urandom(key_bytes), os.urandom(block_bytes)
    algorithm = TripleDES(key) if cipher == "tripledes_3key" else cipher_algorithms.AES(key)
    padder = symmetric_padding.PKCS7(block_bytes * 8).padder()
    padded = padder.update(content) + padder.finalize()
    encryptor = Cipher(algorithm, modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    recipient_key = x509.load_der_x509_certificate(recipient_der).public_key()
    assert isinstance(recipient_key, rsa.RSAPublicKey), "read_pki_message accepts RSA signers only"
    enveloped = asn1_cms.EnvelopedData(
        {
            "version": "v0",
            "recipient_infos": [
                asn1_cms.RecipientInfo(
                    name="ktri",
                    value={
                        "version": "v0",
                        "rid": asn1_cms.RecipientIdentifier(
                            name="issuer_and_serial_number", value=_issuer_and_serial(recipient_der)
                        ),
                        "key_encryption_algorithm": {"algorithm": "rsaes_pkcs1v15"},
                        "encrypted_key": recipient_key.encrypt(key, padding.PKCS1v15()),
                    },
                )
            ],
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": {"algorithm": cipher, "parameters": core.OctetString(iv)},
                "encrypted_content": encrypted,
            },
        }
    )
    der: bytes = asn1_cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump()
    return der


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
    status = PKIStatus.success if issued is not None else PKIStatus.failure
    content = b""
    if issued is not None:
        content = envelope(
            degenerate_certificates([issued]),
            recipient_der=request.signer_certificate_der,
            cipher=_cipher_of(request),
        )
    digest = hashes.Hash(hash_algorithm)
    digest.update(content)
    attributes = [
        _attribute("1.2.840.113549.1.9.3", asn1_cms.ContentType("data")),
        _attribute("1.2.840.113549.1.9.5", asn1_cms.Time(name="utc_time", value=core.UTCTime(now))),
        _attribute("1.2.840.113549.1.9.4", core.OctetString(digest.finalize())),
        _attribute(MESSAGE_TYPE_OID, core.PrintableString(str(int(MessageType.cert_rep)))),
        _attribute(PKI_STATUS_OID, core.PrintableString(str(int(status)))),
        _attribute(TRANSACTION_ID_OID, core.PrintableString(request.transaction_id)),
        _attribute(SENDER_NONCE_OID, core.OctetString(os.urandom(NONCE_BYTES))),
        _attribute(RECIPIENT_NONCE_OID, core.OctetString(request.sender_nonce)),
    ]
    if fail_info is not None:
        attributes.append(_attribute(FAIL_INFO_OID, core.PrintableString(str(int(fail_info)))))
    signed_attributes = asn1_cms.CMSAttributes(attributes)
    signature = ca_key.sign(signed_attributes.dump(), padding.PKCS1v15(), hash_algorithm)
    ca_der = certificate_to_der(ca_certificate)
    signer = asn1_cms.SignerInfo(
        {
            "version": "v1",
            "sid": asn1_cms.SignerIdentifier(name="issuer_and_serial_number", value=_issuer_and_serial(ca_der)),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": digest_name}),
            "signed_attrs": signed_attributes,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"}),
            "signature": signature,
        }
    )
    encapsulated: dict[str, object] = {"content_type": "data"}
    if content:
        encapsulated["content"] = content
    signed = asn1_cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": digest_name})],
            "encap_content_info": encapsulated,
            "certificates": [asn1_x509.Certificate.load(ca_der)],
            "signer_infos": [signer],
        }
    )
    der: bytes = asn1_cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    return der
