"""The device's SCEP client (RFC 8894): how iOS turns the profile's SCEP payload into its MDM identity.

GetCACaps, GetCACert, then a PKCSReq: a new RSA key of the payload's ``Keysize``, a CSR with its Subject, challenge
and key usage, wrapped in an EnvelopedData to the CA (AES when offered, else 3DES) and signed by a temporary
self-signed certificate over the CSR's key (RFC 8894 §3.3.1), POSTed when the CA offers POSTPKIOperation. The
CertRep's signature, transactionID and recipientNonce are checked before the issued certificate is decrypted.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AttributeOID, NameOID, ObjectIdentifier

from pippin.sim.iphone.cms import (
    CMSError,
    certificates_of,
    chains_to,
    envelope,
    open_envelope,
    read_signed_data,
    sign_attached,
)
from pippin.sim.iphone.errors import SetupFailed
from pippin.sim.iphone.identity import DeviceIdentity

MESSAGE_TYPE = "2.16.840.1.113733.1.9.2"
PKI_STATUS = "2.16.840.1.113733.1.9.3"
FAIL_INFO = "2.16.840.1.113733.1.9.4"
SENDER_NONCE = "2.16.840.1.113733.1.9.5"
RECIPIENT_NONCE = "2.16.840.1.113733.1.9.6"
TRANSACTION_ID = "2.16.840.1.113733.1.9.7"
PKCS_REQ, CERT_REP = "19", "3"
SUCCESS, FAILURE, PENDING = "0", "2", "3"
FAIL_INFO_NAMES = {"0": "badAlg", "1": "badMessageCheck", "2": "badRequest", "3": "badTime", "4": "badCertId"}
KEY_SIZES = (1024, 2048, 4096)
_SHORT_NAMES = {
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
}


@dataclass(frozen=True)
class SCEPPayload:
    """The keys of a ``com.apple.security.scep`` payload the device uses (apple `com.apple.security.scep.yaml`)."""

    url: str
    subject: x509.Name
    challenge: str | None
    keysize: int
    key_usage: int
    name: str | None = None
    ca_fingerprint: bytes | None = None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> SCEPPayload:
        content = payload.get("PayloadContent")
        if not isinstance(content, dict):
            raise SetupFailed("scep", "the SCEP payload has no PayloadContent dictionary")
        url = content.get("URL")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SetupFailed("scep", "the SCEP payload has no http(s) URL")
        keysize = content.get("Keysize", 1024)  # Apple's default
        if keysize not in KEY_SIZES:
            raise SetupFailed("scep", f"the SCEP payload's Keysize {keysize!r} is not 1024, 2048 or 4096")
        key_type = content.get("Key Type", "RSA")
        if key_type != "RSA":
            raise SetupFailed("scep", f"the SCEP payload's Key Type {key_type!r} is not RSA")
        usage = content.get("Key Usage", 0)
        if not isinstance(usage, int) or isinstance(usage, bool) or usage not in (0, 1, 4, 5):
            raise SetupFailed("scep", "the SCEP payload's Key Usage is not 0, 1, 4 or 5")
        challenge, name, fingerprint = content.get("Challenge"), content.get("Name"), content.get("CAFingerprint")
        if challenge is not None and not isinstance(challenge, str):
            raise SetupFailed("scep", "the SCEP payload's Challenge is not a string")
        if fingerprint is not None and (not isinstance(fingerprint, bytes) or len(fingerprint) not in (16, 20, 32)):
            raise SetupFailed("scep", "the SCEP payload's CAFingerprint is not an MD5, SHA-1 or SHA-256 digest")
        return cls(
            url=url,
            subject=_subject(content.get("Subject", [])),
            challenge=challenge,
            keysize=keysize,
            key_usage=usage,
            name=name if isinstance(name, str) else None,
            ca_fingerprint=fingerprint,
        )


@dataclass(frozen=True)
class PKCSRequest:
    """A PKCSReq ready to send, and what is needed to read its answer."""

    message: bytes
    key: rsa.RSAPrivateKey
    transaction_id: str
    sender_nonce: bytes


def enroll(client: httpx.Client, payload: SCEPPayload) -> DeviceIdentity:
    """Run SCEP against ``payload.url``: the identity the CA issued, or :class:`SetupFailed` saying why not."""
    caps = get_ca_caps(client, payload.url)
    ca_certificates = get_ca_certificates(client, payload.url, name=payload.name)
    recipient = choose_recipient(ca_certificates, fingerprint=payload.ca_fingerprint)
    key = rsa.generate_private_key(public_exponent=65537, key_size=payload.keysize)
    request = pkcs_request(payload, key=key, recipient=recipient, caps=caps)
    answer = _pki_operation(
        client, payload.url, request.message, post="POSTPKIOPERATION" in caps or "SCEPSTANDARD" in caps
    )
    certificate = read_cert_rep(answer, request=request, ca_certificates=ca_certificates)
    return DeviceIdentity(key=key, certificate=certificate, chain=tuple(ca_certificates))


def get_ca_caps(client: httpx.Client, url: str) -> set[str]:
    response = _call(client, "GET", url, params={"operation": "GetCACaps"})
    return {line.strip().upper() for line in response.text.splitlines() if line.strip()}


def get_ca_certificates(client: httpx.Client, url: str, *, name: str | None) -> list[x509.Certificate]:
    """The CA (and RA) certificates: one DER certificate, or a certs-only PKCS#7 of the chain."""
    params = {"operation": "GetCACert", **({"message": name} if name else {})}
    response = _call(client, "GET", url, params=params)
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if kind == "application/x-x509-ca-ra-cert":
            found = certificates_of(response.content)
        else:
            found = [x509.load_der_x509_certificate(response.content)]
    except (CMSError, ValueError):
        raise SetupFailed("scep", "GetCACert answered no certificate the device can read") from None
    if not found:
        raise SetupFailed("scep", "GetCACert answered no certificate")
    return found


def choose_recipient(certificates: Sequence[x509.Certificate], *, fingerprint: bytes | None) -> x509.Certificate:
    """The certificate to encrypt to: the one ``CAFingerprint`` names, else an RA's, else the CA's."""
    if fingerprint is not None:
        digest = {16: "md5", 20: "sha1", 32: "sha256"}[len(fingerprint)]
        for certificate in certificates:
            der = certificate.public_bytes(serialization.Encoding.DER)
            if hashlib.new(digest, der).digest() == fingerprint:
                return certificate
        raise SetupFailed("scep", "no CA certificate matches the payload's CAFingerprint")
    for certificate in certificates:
        if not _is_ca(certificate) and _can_encipher(certificate):
            return certificate
    return certificates[0]


def pkcs_request(
    payload: SCEPPayload, *, key: rsa.RSAPrivateKey, recipient: x509.Certificate, caps: set[str]
) -> PKCSRequest:
    """The PKCSReq pkiMessage: SignedData by a temporary certificate over an EnvelopedData of the CSR."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(payload.subject)
    if payload.challenge is not None:
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, payload.challenge.encode())
    usage = payload.key_usage or 1  # iOS asks for a signing key when the payload names no usage
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=bool(usage & 1),
            content_commitment=False,
            key_encipherment=bool(usage & 4),
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    csr = builder.sign(key, hashes.SHA256())
    temporary = _temporary_certificate(key, payload.subject)
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    transaction_id = hashlib.sha256(public_der).hexdigest().upper()
    nonce = os.urandom(16)
    enveloped = envelope(csr.public_bytes(serialization.Encoding.DER), recipient=recipient, aes="AES" in caps)
    message = sign_attached(
        enveloped,
        key=key,
        certificate=temporary,
        attributes=[
            (MESSAGE_TYPE, core.PrintableString(PKCS_REQ)),
            (TRANSACTION_ID, core.PrintableString(transaction_id)),
            (SENDER_NONCE, core.OctetString(nonce)),
        ],
        digest="sha256" if caps & {"SHA-256", "SCEPSTANDARD"} else "sha1",
    )
    return PKCSRequest(message=message, key=key, transaction_id=transaction_id, sender_nonce=nonce)


def read_cert_rep(
    answer: bytes, *, request: PKCSRequest, ca_certificates: Sequence[x509.Certificate]
) -> x509.Certificate:
    """The certificate a CertRep issues to ``request``'s key; :class:`SetupFailed` for anything else."""
    try:
        # A FAILURE or PENDING carries no content: its messageDigest is over nothing.
        signed = read_signed_data(answer, absent_content=b"")
    except CMSError as exc:
        raise SetupFailed("scep", f"the CertRep is refused: {exc}") from None
    if not chains_to(signed.signer, included=signed.certificates, anchors=ca_certificates):
        raise SetupFailed("scep", "the CertRep is not signed by the CA the device asked")
    attributes = {oid: _attribute_value(der) for oid, der in signed.signed_attributes.items()}
    if attributes.get(MESSAGE_TYPE) != CERT_REP:
        raise SetupFailed("scep", f"the answer's messageType is {attributes.get(MESSAGE_TYPE)!r}, not CertRep")
    if attributes.get(TRANSACTION_ID) != request.transaction_id:
        raise SetupFailed("scep", "the CertRep's transactionID is not the request's")
    if attributes.get(RECIPIENT_NONCE) != request.sender_nonce:
        raise SetupFailed("scep", "the CertRep's recipientNonce is not the request's senderNonce")
    status = attributes.get(PKI_STATUS)
    if status == FAILURE:
        code = attributes.get(FAIL_INFO)
        named = FAIL_INFO_NAMES.get(code if isinstance(code, str) else "", f"failInfo {code!r}")
        raise SetupFailed("scep", f"the CA refused the request ({named})")
    if status == PENDING:
        raise SetupFailed("scep", "the CA left the request PENDING, which this device does not poll")
    if status != SUCCESS:
        raise SetupFailed("scep", f"the CertRep's pkiStatus {status!r} is not one RFC 8894 defines")
    try:
        issued = certificates_of(open_envelope(signed.content, key=request.key))
    except CMSError as exc:
        raise SetupFailed("scep", f"the issued certificate does not decrypt: {exc}") from None
    ours = request.key.public_key().public_numbers()
    for certificate in issued:
        public_key = certificate.public_key()
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.public_numbers() == ours:
            return certificate
    raise SetupFailed("scep", "the CertRep holds no certificate for the device's key")


def _pki_operation(client: httpx.Client, url: str, message: bytes, *, post: bool) -> bytes:
    if post:
        response = _call(
            client,
            "POST",
            url,
            params={"operation": "PKIOperation"},
            content=message,
            headers={"Content-Type": "application/x-pki-message"},
        )
    else:
        encoded = base64.b64encode(message).decode("ascii")
        response = _call(client, "GET", url, params={"operation": "PKIOperation", "message": encoded})
    return response.content


def _call(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    operation = kwargs.get("params", {}).get("operation", "?")
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise SetupFailed("scep", f"{operation}: cannot reach the SCEP server ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise SetupFailed("scep", f"{operation}: the SCEP server answered HTTP {response.status_code}")
    return response


def _attribute_value(der: bytes) -> object:
    try:
        return core.load(der).native
    except ValueError:
        return None


def _subject(value: object) -> x509.Name:
    """The payload's Subject, an array of RDNs each an array of [type, value] pairs (``[[["CN", "x"]]]``)."""
    if not isinstance(value, list):
        raise SetupFailed("scep", "the SCEP payload's Subject is not an array")
    rdns = []
    try:
        for rdn in value:
            attributes = []
            for kind, text in rdn:
                oid = _SHORT_NAMES.get(kind) or ObjectIdentifier(kind)
                attributes.append(x509.NameAttribute(oid, str(text)))
            rdns.append(x509.RelativeDistinguishedName(attributes))
    except (TypeError, ValueError):
        raise SetupFailed("scep", "the SCEP payload's Subject is not an array of [type, value] pairs") from None
    return x509.Name(rdns)


def _temporary_certificate(key: rsa.RSAPrivateKey, subject: x509.Name) -> x509.Certificate:
    now = datetime.now(UTC)
    name = subject if len(subject) else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SCEP request")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _can_encipher(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment
    except x509.ExtensionNotFound:
        return True
