"""The other side of a device's crypto, written for the tests apart from the device's own code: CAs, a verifier of
CMS signatures, and a SCEP CA that answers PKCSReq with a CertRep (RFC 8894), on asn1crypto and cryptography."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from pippin.sim.iphone.identity import DeviceFacts, DeviceIdentity

NOW = datetime(2026, 12, 1, tzinfo=UTC)
SCEP = "2.16.840.1.113733.1.9."
_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha512": hashes.SHA512}


def issue_ec(ca: DeviceIdentity, name: str) -> DeviceIdentity:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    leaf = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .sign(ca.key, hashes.SHA256())
    )
    return DeviceIdentity(key=key, certificate=leaf, chain=(ca.certificate,))


def new_key(size: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def certificate(
    name: str, key: rsa.RSAPrivateKey, *, issuer: DeviceIdentity | None = None, ca: bool = False
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer.key if issuer else key, hashes.SHA256())


def new_ca(name: str = "Test CA") -> DeviceIdentity:
    key = new_key()
    return DeviceIdentity(key=key, certificate=certificate(name, key, ca=True))


def issue(ca: DeviceIdentity, name: str) -> DeviceIdentity:
    key = new_key()
    return DeviceIdentity(key=key, certificate=certificate(name, key, issuer=ca), chain=(ca.certificate,))


def facts(serial: str = "F2LXK0AAHG7F", *, os_version: str = "18.1", cellular: bool = True) -> DeviceFacts:
    return DeviceFacts(
        serial_number=serial,
        udid="00008120-000A1C2E3E9B401E",
        product="iPhone15,2",
        os_version=os_version,
        build_version="22B83",
        imei="35 289611 025183 6" if cellular else None,
        meid="35289611025183" if cellular else None,
    )


@dataclass(frozen=True)
class Verified:
    content: bytes
    signer: x509.Certificate
    digest: str
    attributes: dict[str, object]


def verify_cms(data: bytes, *, detached: bytes | None = None) -> Verified:
    """Check a SignedData as a server would: one signer, messageDigest, RSA signature over the signed attributes."""
    signed = cms.ContentInfo.load(data)["content"]
    (signer_info,) = list(signed["signer_infos"])
    certificates = [x509.load_der_x509_certificate(c.chosen.dump()) for c in signed["certificates"]]
    sid = signer_info["sid"].chosen
    signer = next(
        c for c in certificates if c.serial_number == sid["serial_number"].native and _issuer(c) == sid["issuer"]
    )
    content = detached if detached is not None else signed["encap_content_info"]["content"].native
    digest = signer_info["digest_algorithm"]["algorithm"].native
    attributes = {a["type"].dotted: a["values"][0].native for a in signer_info["signed_attrs"]}
    assert attributes["1.2.840.113549.1.9.4"] == hashlib.new(digest, content).digest()
    to_sign = signer_info["signed_attrs"].untag().dump(force=True)
    public_key = signer.public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signer_info["signature"].native, to_sign, ec.ECDSA(_HASHES[digest]()))
    else:
        assert isinstance(public_key, rsa.RSAPublicKey)
        public_key.verify(signer_info["signature"].native, to_sign, padding.PKCS1v15(), _HASHES[digest]())
    return Verified(content=content, signer=signer, digest=digest, attributes=attributes)


def _issuer(certificate: x509.Certificate) -> asn1_x509.Name:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER)).issuer


def sign_profile(content: bytes, signer: DeviceIdentity) -> bytes:
    """A profile signed as servers sign them (reference §1.5): attached, DER, SHA-256, chain included."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content)
    builder = builder.add_signer(signer.certificate, signer.key, hashes.SHA256())
    for extra in signer.chain:
        builder = builder.add_certificate(extra)
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])


@dataclass
class SCEPAuthority:
    """A SCEP CA for the tests: checks the challenge, issues the CSR's key, answers a CertRep."""

    ca: DeviceIdentity = field(default_factory=new_ca)
    challenge: str = "one-time-challenge"
    caps: str = "POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\n"
    requests: list[x509.CertificateSigningRequest] = field(default_factory=list)

    def answer(self, message: bytes, *, nonce_override: bytes | None = None) -> bytes:
        request = verify_cms(message)
        envelope = request.content
        csr_der = pkcs7.pkcs7_decrypt_der(envelope, self.ca.certificate, self.ca.key, [])
        csr = x509.load_der_x509_csr(csr_der)
        self.requests.append(csr)
        challenge = csr.attributes.get_attribute_for_oid(x509.oid.AttributeOID.CHALLENGE_PASSWORD).value
        nonce = nonce_override or request.attributes[SCEP + "5"]
        assert isinstance(nonce, bytes)
        transaction = str(request.attributes[SCEP + "7"])
        if challenge != self.challenge.encode():
            return self.cert_rep(transaction, nonce, status="2", fail_info="2")
        issued = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.ca.certificate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW)
            .not_valid_after(NOW + timedelta(days=365))
            .sign(self.ca.key, hashes.SHA256())
        )
        degenerate = pkcs7.serialize_certificates([issued], serialization.Encoding.DER)
        enveloped = (
            pkcs7.PKCS7EnvelopeBuilder()
            .set_data(degenerate)
            .add_recipient(request.signer)
            .set_content_encryption_algorithm(algorithms.AES256)
            .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
        )
        return self.cert_rep(transaction, nonce, status="0", content=enveloped)

    def cert_rep(
        self, transaction: str, nonce: bytes, *, status: str, fail_info: str | None = None, content: bytes = b""
    ) -> bytes:
        """A CertRep built by hand with asn1crypto (cryptography cannot add SCEP's signed attributes)."""
        values: list[tuple[str, core.Asn1Value]] = [
            (SCEP + "2", core.PrintableString("3")),
            (SCEP + "3", core.PrintableString(status)),
            (SCEP + "5", core.OctetString(os.urandom(16))),
            (SCEP + "6", core.OctetString(nonce)),
            (SCEP + "7", core.PrintableString(transaction)),
        ]
        if fail_info is not None:
            values.append((SCEP + "4", core.PrintableString(fail_info)))
        attributes = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["data"]},
                {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
                *({"type": oid, "values": [value]} for oid, value in values),
            ]
        )
        ca = asn1_x509.Certificate.load(self.ca.certificate.public_bytes(serialization.Encoding.DER))
        signature = self.ca.key.sign(attributes.dump(), padding.PKCS1v15(), hashes.SHA256())
        signed = cms.SignedData(
            {
                "version": "v1",
                "digest_algorithms": [{"algorithm": "sha256"}],
                # RFC 8894 section 3.3.2: a FAILURE or PENDING encapsulates no content (the pkcsPKIEnvelope).
                "encap_content_info": {"content_type": "data", "content": content or None},
                "certificates": [ca],
                "signer_infos": [
                    {
                        "version": "v1",
                        "sid": cms.SignerIdentifier(
                            {"issuer_and_serial_number": {"issuer": ca.issuer, "serial_number": ca.serial_number}}
                        ),
                        "digest_algorithm": {"algorithm": "sha256"},
                        "signed_attrs": attributes,
                        "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
                        "signature": signature,
                    }
                ],
            }
        )
        der: bytes = cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
        return der
