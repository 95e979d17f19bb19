"""The device's SCEP client: the PKCSReq it sends decodes as RFC 8894 says, and it reads CertReps as a device must."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AttributeOID, NameOID

from pippin.sim.iphone import scep_client
from pippin.sim.iphone.errors import SetupFailed
from pippin.sim.iphone.scep_client import SCEPPayload, pkcs_request, read_cert_rep
from tests.sim.iphone.pki import SCEP, SCEPAuthority, new_key, verify_cms

PAYLOAD: dict[str, Any] = {
    "PayloadType": "com.apple.security.scep",
    "PayloadContent": {
        "URL": "https://mdm.example.com/mdm/scep",
        "Subject": [[["O", "Pippin"]], [["CN", "Device identity"]]],
        "Challenge": "one-time-challenge",
        "Keysize": 2048,
        "Key Usage": 5,
    },
}


def _payload(**changes: object) -> SCEPPayload:
    return SCEPPayload.from_payload({**PAYLOAD, "PayloadContent": {**PAYLOAD["PayloadContent"], **changes}})


def test_the_pkcsreq_is_signed_by_a_temporary_certificate_over_the_csr_key_and_holds_the_csr() -> None:
    authority = SCEPAuthority()
    key = new_key()
    request = pkcs_request(_payload(), key=key, recipient=authority.ca.certificate, caps={"AES", "SHA-256"})
    verified = verify_cms(request.message)
    assert verified.digest == "sha256"
    assert verified.signer.issuer == verified.signer.subject  # self-signed
    signer_key = verified.signer.public_key()
    assert isinstance(signer_key, rsa.RSAPublicKey)
    assert signer_key.public_numbers() == key.public_key().public_numbers()
    assert verified.attributes[SCEP + "2"] == "19"  # PKCSReq
    assert verified.attributes[SCEP + "7"] == request.transaction_id
    assert verified.attributes[SCEP + "5"] == request.sender_nonce and len(request.sender_nonce) == 16
    envelope = cms.ContentInfo.load(verified.content)["content"]
    assert envelope["encrypted_content_info"]["content_encryption_algorithm"]["algorithm"].native == "aes128_cbc"
    csr_der = pkcs7.pkcs7_decrypt_der(verified.content, authority.ca.certificate, authority.ca.key, [])
    csr = x509.load_der_x509_csr(csr_der)
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Device identity"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Pippin"
    assert csr.attributes.get_attribute_for_oid(AttributeOID.CHALLENGE_PASSWORD).value == b"one-time-challenge"
    usage = csr.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment
    public_key = csr.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048


def test_without_aes_the_envelope_is_3des_and_opens_with_the_ca_key() -> None:
    authority = SCEPAuthority()
    request = pkcs_request(_payload(), key=new_key(1024), recipient=authority.ca.certificate, caps=set())
    verified = verify_cms(request.message)
    assert verified.digest == "sha1"  # no SHA-256 offered
    enveloped = cms.ContentInfo.load(verified.content)["content"]
    algorithm = enveloped["encrypted_content_info"]["content_encryption_algorithm"]
    assert algorithm["algorithm"].native == "tripledes_3key"
    recipient = enveloped["recipient_infos"][0].chosen
    content_key = authority.ca.key.decrypt(recipient["encrypted_key"].native, padding.PKCS1v15())
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    decryptor = Cipher(TripleDES(content_key), modes.CBC(algorithm.encryption_iv)).decryptor()
    padded = decryptor.update(enveloped["encrypted_content_info"]["encrypted_content"].native) + decryptor.finalize()
    csr = x509.load_der_x509_csr(padded[: -padded[-1]])
    assert csr.is_signature_valid


def test_a_certrep_success_gives_the_certificate_issued_to_the_key() -> None:
    authority = SCEPAuthority()
    request = pkcs_request(_payload(), key=new_key(), recipient=authority.ca.certificate, caps={"AES", "SHA-256"})
    answer = authority.answer(request.message)
    issued = read_cert_rep(answer, request=request, ca_certificates=[authority.ca.certificate])
    assert issued.issuer == authority.ca.certificate.subject
    issued_key = issued.public_key()
    assert isinstance(issued_key, rsa.RSAPublicKey)
    assert issued_key.public_numbers() == request.key.public_key().public_numbers()


def test_a_certrep_failure_says_the_fail_info() -> None:
    authority = SCEPAuthority(challenge="another")
    request = pkcs_request(_payload(), key=new_key(), recipient=authority.ca.certificate, caps={"AES"})
    with pytest.raises(SetupFailed, match="badRequest"):
        read_cert_rep(authority.answer(request.message), request=request, ca_certificates=[authority.ca.certificate])


def test_a_certrep_for_another_nonce_or_from_another_ca_is_refused() -> None:
    authority = SCEPAuthority()
    request = pkcs_request(_payload(), key=new_key(), recipient=authority.ca.certificate, caps={"AES"})
    answer = authority.answer(request.message, nonce_override=b"\x00" * 16)
    with pytest.raises(SetupFailed, match="recipientNonce"):
        read_cert_rep(answer, request=request, ca_certificates=[authority.ca.certificate])
    foreign = SCEPAuthority()
    with pytest.raises(SetupFailed, match="not signed by the CA"):
        read_cert_rep(authority.answer(request.message), request=request, ca_certificates=[foreign.ca.certificate])


def test_enroll_speaks_getcacaps_getcacert_and_posts_the_pkioperation() -> None:
    authority = SCEPAuthority()
    seen: list[tuple[str, str]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        operation = request.url.params["operation"]
        seen.append((request.method, operation))
        if operation == "GetCACaps":
            return httpx.Response(200, text=authority.caps)
        if operation == "GetCACert":
            der = authority.ca.certificate.public_bytes(serialization.Encoding.DER)
            return httpx.Response(200, content=der, headers={"Content-Type": "application/x-x509-ca-cert"})
        assert request.headers["content-type"] == "application/x-pki-message"
        return httpx.Response(200, content=authority.answer(request.content))

    with httpx.Client(transport=httpx.MockTransport(handle)) as client:
        identity = scep_client.enroll(client, _payload())
    assert seen == [("GET", "GetCACaps"), ("GET", "GetCACert"), ("POST", "PKIOperation")]
    assert identity.chain == (authority.ca.certificate,)
    assert len(authority.requests) == 1


def test_the_recipient_is_the_ca_the_fingerprint_names() -> None:
    first, second = SCEPAuthority().ca.certificate, SCEPAuthority().ca.certificate
    fingerprint = hashlib.sha256(second.public_bytes(serialization.Encoding.DER)).digest()
    assert scep_client.choose_recipient([first, second], fingerprint=fingerprint) == second
    with pytest.raises(SetupFailed, match="CAFingerprint"):
        scep_client.choose_recipient([first], fingerprint=fingerprint)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"Keysize": 3000}, "Keysize"),
        ({"URL": "ftp://x"}, "URL"),
        ({"Key Usage": 2}, "Key Usage"),
        ({"Subject": [["CN"]]}, "Subject"),
        ({"Key Type": "EC"}, "Key Type"),
    ],
)
def test_a_payload_ios_would_not_use_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SetupFailed, match=message):
        _payload(**changes)
