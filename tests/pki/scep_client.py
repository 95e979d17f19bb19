"""A SCEP client for tests, written apart from Pippin's SCEP code so that one bug cannot hide on both sides.

It does what a device does (reference ``apple-mdm-protocol.md`` section 6, "Device side"): a CSR with the
profile's challenge, signed into a PKIMessage with a temporary self-signed certificate, the CSR encrypted to the
CA (AES by ``cryptography``'s envelope builder, 3DES by the openssl binary), and the CertRep read back: its
signature checked over its signed attributes, its envelope opened with the temporary key.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import algos, core
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AttributeOID, NameOID

from tests.crypto.openssl_tokens import OPENSSL, openssl_encrypt

SCEP = "2.16.840.1.113733.1.9."
HASH_TYPES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha512": hashes.SHA512}


def build_csr(
    key: rsa.RSAPrivateKey, *, challenge: str | None, common_name: str = "Pippin Identity", encipherment: bool = False
) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
    )
    if challenge is not None:
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
    builder = builder.add_extension(
        x509.KeyUsage(True, False, encipherment, False, False, False, False, False, False), critical=True
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def self_signed(key: rsa.RSAPrivateKey, *, now: datetime | None = None) -> x509.Certificate:
    """The temporary signer certificate a device makes over its own key."""
    now = now or datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SCEP SIGNER")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def encrypt_to(content: bytes, ca: x509.Certificate, *, cipher: str, workdir: Path) -> bytes:
    if cipher == "aes":
        return (
            pkcs7.PKCS7EnvelopeBuilder()
            .set_data(content)
            .add_recipient(ca)
            .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
        )
    pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    return openssl_encrypt(content, pem, workdir, cipher="des3", outform="DER")


def _attribute(oid: str, value: core.Asn1Value) -> asn1_cms.CMSAttribute:
    return asn1_cms.CMSAttribute({"type": oid, "values": [value]})


def signed_message(
    content: bytes,
    *,
    signer_key: rsa.RSAPrivateKey,
    signer_certificate: x509.Certificate,
    message_type: int,
    transaction_id: str,
    sender_nonce: bytes,
    digest: str = "sha256",
) -> bytes:
    """A PKIMessage: SignedData over ``content`` with the SCEP attributes, signed by the signer."""
    hash_algorithm = HASH_TYPES[digest]()
    hasher = hashes.Hash(hash_algorithm)
    hasher.update(content)
    attributes = asn1_cms.CMSAttributes(
        [
            _attribute("1.2.840.113549.1.9.3", asn1_cms.ContentType("data")),
            _attribute("1.2.840.113549.1.9.4", core.OctetString(hasher.finalize())),
            _attribute(SCEP + "2", core.PrintableString(str(message_type))),
            _attribute(SCEP + "7", core.PrintableString(transaction_id)),
            _attribute(SCEP + "5", core.OctetString(sender_nonce)),
        ]
    )
    signature = signer_key.sign(attributes.dump(), padding.PKCS1v15(), hash_algorithm)
    cert = asn1_x509.Certificate.load(signer_certificate.public_bytes(serialization.Encoding.DER))
    signer = {
        "version": "v1",
        "sid": asn1_cms.SignerIdentifier(
            name="issuer_and_serial_number", value={"issuer": cert.issuer, "serial_number": cert.serial_number}
        ),
        "digest_algorithm": {"algorithm": digest},
        "signed_attrs": attributes,
        "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
        "signature": signature,
    }
    signed = asn1_cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": digest})],
            "encap_content_info": {"content_type": "data", "content": content},
            "certificates": [cert],
            "signer_infos": [signer],
        }
    )
    der: bytes = asn1_cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    return der


@dataclass(frozen=True)
class CertRep:
    status: str
    fail_info: str | None
    message_type: str
    transaction_id: str
    recipient_nonce: bytes
    sender_nonce: bytes
    digest: str
    certificate: x509.Certificate | None


@dataclass
class SCEPClient:
    """One device's SCEP session: its key, its temporary signer, and the CA it encrypts to."""

    key: rsa.RSAPrivateKey
    ca: x509.Certificate
    workdir: Path
    cipher: str = "aes"
    digest: str = "sha256"

    def __post_init__(self) -> None:
        self.signer_key = self.key
        self.signer_certificate = self_signed(self.key)
        self.transaction_id = os.urandom(20).hex().upper()
        self.sender_nonce = os.urandom(16)

    def request(self, csr_der: bytes, *, message_type: int = 19) -> bytes:
        envelope = encrypt_to(csr_der, self.ca, cipher=self.cipher, workdir=self.workdir)
        return signed_message(
            envelope,
            signer_key=self.signer_key,
            signer_certificate=self.signer_certificate,
            message_type=message_type,
            transaction_id=self.transaction_id,
            sender_nonce=self.sender_nonce,
            digest=self.digest,
        )

    def enroll_request(self, challenge: str | None, *, encipherment: bool = False) -> bytes:
        """PKCSReq with a CSR over the client's key carrying ``challenge``."""
        return self.request(build_csr(self.key, challenge=challenge, encipherment=encipherment))

    def renewal_request(self) -> bytes:
        """RenewalReq: a CSR with no challenge, signed by whatever signer the client was given."""
        return self.request(build_csr(self.key, challenge=None), message_type=17)

    def read(self, reply: bytes) -> CertRep:
        """The CertRep, its CA signature and messageDigest checked, its certificate (on SUCCESS) decrypted."""
        signed = asn1_cms.ContentInfo.load(reply)["content"]
        signer = signed["signer_infos"][0]
        attributes = {a["type"].dotted: a["values"][0].native for a in signer["signed_attrs"]}
        digest = signer["digest_algorithm"]["algorithm"].native
        content = signed["encap_content_info"]["content"].native or b""
        hasher = hashes.Hash(HASH_TYPES[digest]())
        hasher.update(content)
        assert attributes["1.2.840.113549.1.9.4"] == hasher.finalize(), "messageDigest matches the content"
        public_key = self.ca.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        signed_bytes = b"\x31" + signer["signed_attrs"].dump()[1:]
        public_key.verify(signer["signature"].native, signed_bytes, padding.PKCS1v15(), HASH_TYPES[digest]())
        certificate = None
        if content:
            inner = self._decrypt(content)
            certificates = pkcs7.load_der_pkcs7_certificates(inner)
            assert len(certificates) == 1
            certificate = certificates[0]
        return CertRep(
            status=attributes[SCEP + "3"],
            fail_info=attributes.get(SCEP + "4"),
            message_type=attributes[SCEP + "2"],
            transaction_id=attributes[SCEP + "7"],
            recipient_nonce=attributes[SCEP + "6"],
            sender_nonce=attributes[SCEP + "5"],
            digest=digest,
            certificate=certificate,
        )

    def _decrypt(self, enveloped: bytes) -> bytes:
        if self.cipher == "aes":
            return pkcs7.pkcs7_decrypt_der(enveloped, self.signer_certificate, self.signer_key, [])
        self.workdir.mkdir(parents=True, exist_ok=True)
        key_file = self.workdir / "signer.key"
        key_file.write_bytes(
            self.signer_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        cert_file = self.workdir / "signer.pem"
        cert_file.write_bytes(self.signer_certificate.public_bytes(serialization.Encoding.PEM))
        result = subprocess.run(
            [OPENSSL, "cms", "-decrypt", "-inform", "DER", "-recip", str(cert_file), "-inkey", str(key_file)],
            input=enveloped,
            capture_output=True,
            check=True,
        )
        return result.stdout
