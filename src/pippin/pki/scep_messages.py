"""RFC 8894's request side: read a SCEP PKIMessage, check its signature, open its envelope, read its CSR.

A PKIMessage (reference ``apple-mdm-protocol.md`` section 6) is CMS SignedData, signed by the requester with a
temporary self-signed certificate, whose signed attributes carry the SCEP fields (``messageType``,
``transactionID``, ``senderNonce``) and whose content is an EnvelopedData encrypted to the CA, holding the
PKCS#10 request. Parsing is asn1crypto's (it reads BER, which ``cryptography`` does not), after a walk that bounds
the nesting (``crypto/ber_bounds.py``); the envelope is opened by ``crypto/cms.py`` (AES with ``cryptography``, 3DES
with its ``decrepit`` primitives).

Two kinds of failure. A message too damaged to answer (no signer, no transactionID or nonce) is
:class:`MalformedPKIMessage`: the route refuses it with 400. A message that can be answered but not granted (a
signature that does not verify, an envelope to another CA, an unknown algorithm) is :class:`SCEPRefusal`, which
names the ``failInfo`` of the CertRep FAILURE that answers it (RFC 8894 section 3.2.1.4).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import IntEnum

from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import AttributeOID

from pippin.crypto import cms
from pippin.crypto.ber_bounds import check_ber
from pippin.errors import InvalidInput

#: The SCEP attributes' arc (VeriSign), RFC 8894 section 3.2.1.
_SCEP_ARC = "2.16.840.1.113733.1.9."
MESSAGE_TYPE_OID = _SCEP_ARC + "2"
PKI_STATUS_OID = _SCEP_ARC + "3"
FAIL_INFO_OID = _SCEP_ARC + "4"
SENDER_NONCE_OID = _SCEP_ARC + "5"
RECIPIENT_NONCE_OID = _SCEP_ARC + "6"
TRANSACTION_ID_OID = _SCEP_ARC + "7"

#: RFC 8894 section 3.2.1.2 calls for 16-byte nonces; macOS's mdmclient sends 8. Anything up to this is read.
MAX_NONCE_BYTES = 64
#: A transactionID is a hash of the key (hex or base64) or a random string: short.
MAX_TRANSACTION_ID_LENGTH = 128

#: Digests a requester may sign with; MD5 is refused (badAlg).
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class MessageType(IntEnum):
    """``messageType`` values (RFC 8894 section 3.2.1.2); on the wire, the decimal as a PrintableString."""

    cert_rep = 3
    renewal_req = 17
    pkcs_req = 19
    cert_poll = 20
    get_cert = 21
    get_crl = 22


class PKIStatus(IntEnum):
    success = 0
    failure = 2
    pending = 3


class FailInfo(IntEnum):
    """Why a request failed (RFC 8894 section 3.2.1.4)."""

    #: Unrecognized or unsupported algorithm.
    bad_alg = 0
    #: Integrity check (the signature, the message digest, the envelope) failed.
    bad_message_check = 1
    #: Transaction not permitted or supported.
    bad_request = 2
    #: A time was not within the allowed window.
    bad_time = 3
    #: No certificate could be identified matching the provided criteria.
    bad_cert_id = 4


class MalformedPKIMessage(InvalidInput):
    """Not a SCEP PKIMessage that can be answered at all."""

    code = "malformed_pki_message"


class SCEPRefusal(InvalidInput):
    """A request that is answered with CertRep FAILURE and ``fail_info``; nothing was stored."""

    code = "scep_refused"

    def __init__(self, fail_info: FailInfo, message: str) -> None:
        super().__init__(message)
        self.fail_info = fail_info


@dataclass(frozen=True)
class PKIMessage:
    """What a request says, and whether its signature held (``integrity_problem`` is ``None`` when it did)."""

    message_type: int
    transaction_id: str
    sender_nonce: bytes
    #: The name of the digest the requester signed with (``sha256``); the answer is signed with it too.
    digest_algorithm: str
    signer_certificate: x509.Certificate
    #: The signer certificate's DER, as sent.
    signer_certificate_der: bytes
    #: The encapsulated content: DER of the EnvelopedData encrypted to the CA.
    enveloped_data: bytes
    integrity_problem: SCEPRefusal | None


@dataclass(frozen=True)
class SigningRequest:
    """The PKCS#10 request inside the envelope, its self-signature checked."""

    csr: x509.CertificateSigningRequest
    challenge: str | None
    #: The CSR's KeyUsage asks for keyEncipherment (the SCEP payload's ``Key Usage`` with bit 4).
    wants_key_encipherment: bool


def _signed_attribute(attributes: asn1_cms.CMSAttributes, oid: str) -> object:
    """The single value of the attribute ``oid``, natively; ``None`` when absent. Twice, or many values: refused."""
    found = [attribute for attribute in attributes if attribute["type"].dotted == oid]
    if not found:
        return None
    if len(found) > 1 or len(found[0]["values"]) != 1:
        raise MalformedPKIMessage("A SCEP attribute appears more than once.")
    return found[0]["values"][0].native


def _printable(value: object, name: str, *, max_length: int) -> str:
    if not isinstance(value, str) or not value or len(value) > max_length or not value.isprintable():
        raise MalformedPKIMessage(f"The request's {name} is missing or not a short printable string.")
    return value


def _signer_certificate(signed: asn1_cms.SignedData, signer: asn1_cms.SignerInfo) -> asn1_cms.Certificate:
    sid = signer["sid"]
    for choice in signed["certificates"] or []:
        if choice.name != "certificate":
            continue
        certificate = choice.chosen
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if (
                certificate.issuer.dump() == wanted["issuer"].dump()
                and certificate.serial_number == wanted["serial_number"].native
            ):
                return certificate
        elif certificate.key_identifier == sid.chosen.native:
            return certificate
    raise MalformedPKIMessage("The request does not include the certificate it is signed with.")


def _verify(signer: asn1_cms.SignerInfo, content: bytes, public_key: object, digest_name: str) -> SCEPRefusal | None:
    """Why the signature does not hold (RFC 5652 section 5.4: messageDigest, then the signed attributes)."""
    hash_type = HASHES.get(digest_name)
    if hash_type is None:
        return SCEPRefusal(FailInfo.bad_alg, f"The request is signed with {digest_name[:20]}, which is refused.")
    if not isinstance(public_key, rsa.RSAPublicKey):
        return SCEPRefusal(FailInfo.bad_alg, "The request is signed with a key that is not RSA.")
    algorithm = signer["signature_algorithm"]
    if algorithm.signature_algo != "rsassa_pkcs1v15":
        return SCEPRefusal(FailInfo.bad_alg, "The request's signature is not RSA PKCS#1 v1.5.")
    attributes = signer["signed_attrs"]
    declared = _signed_attribute(attributes, "1.2.840.113549.1.9.4")
    digest = hashes.Hash(hash_type())
    digest.update(content)
    if not isinstance(declared, bytes) or not hmac.compare_digest(declared, digest.finalize()):
        return SCEPRefusal(FailInfo.bad_message_check, "The request's message digest does not match its content.")
    content_type = _signed_attribute(attributes, "1.2.840.113549.1.9.3")
    if content_type != "data":
        return SCEPRefusal(FailInfo.bad_message_check, "The request's signed content type is not data.")
    # The signature covers the attributes as a SET OF, not with the [0] tag they carry in SignerInfo.
    signed_bytes = b"\x31" + attributes.dump()[1:]
    try:
        public_key.verify(signer["signature"].native, signed_bytes, padding.PKCS1v15(), hash_type())
    except InvalidSignature:
        return SCEPRefusal(FailInfo.bad_message_check, "The request's signature does not verify.")
    return None


def read_pki_message(data: bytes) -> PKIMessage:
    """The request in ``data`` (BER or DER), or :class:`MalformedPKIMessage`."""
    check_ber(data)
    try:
        info = asn1_cms.ContentInfo.load(data)
        if info["content_type"].native != "signed_data":
            raise MalformedPKIMessage("The message is not CMS SignedData.")
        signed = info["content"]
        signers = signed["signer_infos"]
        if len(signers) != 1:
            raise MalformedPKIMessage("The request must have exactly one signer.")
        signer = signers[0]
        attributes = signer["signed_attrs"]
        if not attributes:
            raise MalformedPKIMessage("The request has no signed attributes.")
        encapsulated = signed["encap_content_info"]
        if encapsulated["content_type"].native != "data" or encapsulated["content"].native is None:
            raise MalformedPKIMessage("The request carries no data content.")
        content: bytes = encapsulated["content"].native
        message_type = _printable(_signed_attribute(attributes, MESSAGE_TYPE_OID), "messageType", max_length=3)
        transaction_id = _printable(
            _signed_attribute(attributes, TRANSACTION_ID_OID), "transactionID", max_length=MAX_TRANSACTION_ID_LENGTH
        )
        nonce = _signed_attribute(attributes, SENDER_NONCE_OID)
        if not isinstance(nonce, bytes) or not 0 < len(nonce) <= MAX_NONCE_BYTES:
            raise MalformedPKIMessage("The request's senderNonce is missing or not a short octet string.")
        if not message_type.isdigit():
            raise MalformedPKIMessage("The request's messageType is not a number.")
        signer_asn1 = _signer_certificate(signed, signer)
        signer_der = signer_asn1.dump()
        digest_name = signer["digest_algorithm"]["algorithm"].native
    except MalformedPKIMessage:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise MalformedPKIMessage("The message is not a well-formed PKIMessage (damaged or cut short).") from exc
    try:
        signer_certificate = x509.load_der_x509_certificate(signer_der)
        public_key = signer_certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MalformedPKIMessage("The request's signer certificate cannot be read.") from exc
    try:
        problem = _verify(signer, content, public_key, str(digest_name))
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedPKIMessage("The request's signed attributes are damaged.") from exc
    return PKIMessage(
        message_type=int(message_type),
        transaction_id=transaction_id,
        sender_nonce=nonce,
        digest_algorithm=str(digest_name),
        signer_certificate=signer_certificate,
        signer_certificate_der=signer_der,
        enveloped_data=content,
        integrity_problem=problem,
    )


def open_envelope(message: PKIMessage, *, private_key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> bytes:
    """The content the requester encrypted to the CA (the CSR's DER), or :class:`SCEPRefusal`."""
    try:
        check_ber(message.enveloped_data)
        return cms.decrypt_enveloped(message.enveloped_data, private_key=private_key, certificate=certificate)
    except cms.UnsupportedCipher as exc:
        raise SCEPRefusal(FailInfo.bad_alg, "The request is encrypted with a cipher Pippin does not support.") from exc
    except cms.WrongRecipient as exc:
        raise SCEPRefusal(FailInfo.bad_message_check, "The request is encrypted to another CA.") from exc
    except InvalidInput as exc:
        raise SCEPRefusal(FailInfo.bad_message_check, "The request's envelope cannot be opened.") from exc


def read_signing_request(der: bytes) -> SigningRequest:
    """The PKCS#10 request from the envelope, its self-signature verified, or :class:`SCEPRefusal`."""
    try:
        check_ber(der)
        csr = x509.load_der_x509_csr(der)
        valid = csr.is_signature_valid
    except (InvalidInput, ValueError, UnsupportedAlgorithm) as exc:
        raise SCEPRefusal(FailInfo.bad_request, "The request's envelope holds no readable PKCS#10 request.") from exc
    if not valid:
        raise SCEPRefusal(FailInfo.bad_message_check, "The PKCS#10 request's signature does not verify.")
    if not isinstance(csr.public_key(), rsa.RSAPublicKey):
        raise SCEPRefusal(FailInfo.bad_alg, "The PKCS#10 request's key is not RSA.")
    try:
        raw = csr.attributes.get_attribute_for_oid(AttributeOID.CHALLENGE_PASSWORD).value
        challenge: str | None = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    except x509.AttributeNotFound:
        challenge = None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SCEPRefusal(FailInfo.bad_request, "The PKCS#10 request's challenge cannot be read.") from exc
    try:
        usage = csr.extensions.get_extension_for_class(x509.KeyUsage).value
        wants_key_encipherment = usage.key_encipherment
    except x509.ExtensionNotFound:
        wants_key_encipherment = False
    except ValueError as exc:
        raise SCEPRefusal(FailInfo.bad_request, "The PKCS#10 request's extensions cannot be read.") from exc
    return SigningRequest(csr=csr, challenge=challenge, wants_key_encipherment=wants_key_encipherment)
