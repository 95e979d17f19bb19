"""The simulator's push certificate authorities: Apple's push CA and the WWDR CA that issues MDM vendor certificates.

Three authorities, made once per simulator state (on first use, so states that never touch push pay nothing) and
kept in its database (``SimCertificateAuthority``):

- ``push_root``: issues push certificates (reference 5, "Topic"). The APNs simulator trusts certificates that chain
  to it: :func:`push_ca_certificates`.
- ``wwdr_root`` and ``wwdr_intermediate``: the "Apple Root CA" and "Apple Worldwide Developer Relations" pair under
  which Apple issues MDM vendor certificates ("MDM CSR" in the developer programme). A vendor's signed request
  carries the vendor certificate, the intermediate and the root (reference 5, "Getting the cert").

Apple's MDM CSR vendor certificates carry a marker extension whose OID Apple does not document; the simulator marks
its test vendor certificates with :data:`MDM_CSR_SIGNING_OID`, an OID of its own in the UUID arc ``2.25`` (ITU-T
X.667: an OID anyone may derive from a UUID, so it collides with nothing), holding an ASN.1 NULL as Apple's markers
do. The portal accepts only vendor certificates that carry it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy.orm import Session

from pippin.sim.state import SimState
from pippin.sim.stored_authorities import Authority, load_or_create

PUSH_ROOT = "push_root"
WWDR_ROOT = "wwdr_root"
WWDR_INTERMEDIATE = "wwdr_intermediate"

#: The simulator's "MDM CSR signing" marker on vendor certificates (see the module docstring).
MDM_CSR_SIGNING_OID = x509.ObjectIdentifier("2.25.305714663021690356706656059929102393652")
#: Apple's "APNs production environment" marker (WWDR CPS), which portal-issued push certificates carry.
APNS_PRODUCTION_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.3.2")
#: DER of ASN.1 NULL: the value of Apple's marker extensions.
_DER_NULL = b"\x05\x00"
#: Every key of the push world is RSA-2048, like Apple's push certificates and the CSRs vendors sign.
KEY_BITS = 2048
_CA_LIFETIME = timedelta(days=20 * 365)
_VENDOR_LIFETIME = timedelta(days=365)

_APPLE = [
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Apple Certification Authority"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Apple Inc. (simulated)"),
    x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
]
_NAMES = {
    PUSH_ROOT: "Apple Application Integration CA (simulated)",
    WWDR_ROOT: "Apple Root CA (simulated)",
    WWDR_INTERMEDIATE: "Apple Worldwide Developer Relations CA (simulated)",
}


@dataclass(frozen=True)
class Authorities:
    """The three authorities of one simulator state."""

    push_root: Authority
    wwdr_root: Authority
    wwdr_intermediate: Authority

    def wwdr_chain(self) -> list[x509.Certificate]:
        """What follows a vendor certificate in a request's ``PushCertCertificateChain``: intermediate, then root."""
        return [self.wwdr_intermediate.certificate, self.wwdr_root.certificate]


@dataclass(frozen=True)
class VendorIdentity:
    """A test MDM vendor certificate, its private key, and the chain to put after it in a request."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey
    chain: list[x509.Certificate]


def load_authorities(session: Session, *, now: datetime) -> Authorities:
    """The state's authorities, made (and stored with ``session``) the first time they are needed."""
    push_root = _stored(session, PUSH_ROOT, issuer=None, now=now)
    wwdr_root = _stored(session, WWDR_ROOT, issuer=None, now=now)
    wwdr_intermediate = _stored(session, WWDR_INTERMEDIATE, issuer=wwdr_root, now=now)
    return Authorities(push_root=push_root, wwdr_root=wwdr_root, wwdr_intermediate=wwdr_intermediate)


def push_ca_certificates(state: SimState) -> list[x509.Certificate]:
    """The certificates an APNs simulator trusts for push client certificates issued by this state's portal."""
    with state.transaction() as session:
        return [load_authorities(session, now=state.clock.now()).push_root.certificate]


def issue_vendor_certificate(authorities: Authorities, *, vendor_name: str, now: datetime) -> VendorIdentity:
    """An MDM vendor ("MDM CSR") certificate from the WWDR intermediate, valid a year from ``now``, with a new key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    start = now.replace(microsecond=0)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"MDM Vendor: {vendor_name}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, uuid.uuid4().hex[:10].upper()),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, vendor_name),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    issuer = authorities.wwdr_intermediate
    certificate = (
        _leaf_builder(subject, issuer, key.public_key(), start, start + _VENDOR_LIFETIME)
        .add_extension(_key_usage(key_encipherment=False), critical=True)
        .add_extension(x509.UnrecognizedExtension(MDM_CSR_SIGNING_OID, _DER_NULL), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )
    return VendorIdentity(certificate=certificate, private_key=key, chain=authorities.wwdr_chain())


def issue_push_certificate(
    authorities: Authorities, *, public_key: rsa.RSAPublicKey, topic: str, not_before: datetime, not_after: datetime
) -> x509.Certificate:
    """A push certificate for ``topic`` (``com.apple.mgmt.External.<uuid>``) around the CSR's public key.

    Subject ``UID=<topic>, CN=APSP:<uuid>, C=US``, UID first (clients read the topic from the first RDN, reference
    5); digitalSignature and keyEncipherment, TLS client authentication, Apple's production-environment marker.
    """
    topic_uuid = topic.rsplit(".", 1)[-1]
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, topic),
            x509.NameAttribute(NameOID.COMMON_NAME, f"APSP:{topic_uuid}"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    issuer = authorities.push_root
    return (
        _leaf_builder(subject, issuer, public_key, not_before, not_after)
        .add_extension(_key_usage(key_encipherment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.UnrecognizedExtension(APNS_PRODUCTION_OID, _DER_NULL), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )


def has_mdm_csr_marker(certificate: x509.Certificate) -> bool:
    """Whether ``certificate`` is enabled for signing MDM push certificate requests."""
    try:
        extension = certificate.extensions.get_extension_for_oid(MDM_CSR_SIGNING_OID)
    except x509.ExtensionNotFound:
        return False
    return isinstance(extension.value, x509.UnrecognizedExtension) and extension.value.value == _DER_NULL


def _stored(session: Session, name: str, *, issuer: Authority | None, now: datetime) -> Authority:
    return load_or_create(session, name, create=lambda: _create_authority(name, issuer=issuer, now=now), now=now)


def _create_authority(name: str, *, issuer: Authority | None, now: datetime) -> Authority:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _NAMES[name]), *_APPLE])
    start = now.replace(microsecond=0) - timedelta(days=1)
    signer_name = subject if issuer is None else issuer.certificate.subject
    signer_key = key if issuer is None else issuer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + _CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    return Authority(certificate=builder.sign(signer_key, hashes.SHA256()), key=key)


def _leaf_builder(
    subject: x509.Name, issuer: Authority, public_key: rsa.RSAPublicKey, start: datetime, end: datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    )


def _key_usage(*, key_encipherment: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
