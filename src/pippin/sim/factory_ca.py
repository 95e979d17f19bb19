"""The simulator's device CA, standing in for Apple's, and the device identities it issues.

A real iPhone signs its MachineInfo with a device identity that chains to Apple Root CA through "Apple iPhone
Certification Authority" and "Apple iPhone Device CA". The simulator builds a chain of the same shape, with the
same names, made once per state (on first use) and kept in its database (``SimCertificateAuthority``):

- ``device_root`` "Apple Root CA": valid 2006-04-25 to 2035-02-09, as Apple's.
- ``device_intermediate`` "Apple iPhone Certification Authority": 2007-04-12 to 2022-04-12, expired as Apple's.
- ``device_ca`` "Apple iPhone Device CA": 2007-04-16 to 2014-04-16, expired long ago as Apple's, and still the
  issuer of every device identity.

Every certificate of the chain and every device certificate is signed with SHA-1 (``sha1WithRSAEncryption``),
as Apple's are. So a server checking MachineInfo learns what it must with Apple's real chain: dates cannot decide
(the issuer of a valid device certificate has expired), and a verifier that refuses SHA-1 refuses every device.
``cryptography`` no longer signs with SHA-1, so certificates are built with it and re-signed with asn1crypto.

Device keys are RSA-2048, made on a device's first identity request and kept (``SimDeviceIdentity``), so the
same device signs with the same key after a restart. (Apple's older devices have 1024-bit keys; 2048 costs more
to generate once per device but keeps any verifier's key-size floor out of the way.) The subject is Apple's:
``CN=<UDID>, C=US, ST=CA, L=Cupertino, O=Apple Inc., OU=iPhone``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session

from pippin.sim.models import SimDeviceIdentity
from pippin.sim.state import SimState
from pippin.sim.stored_authorities import Authority, certificate_pem, load_or_create, private_key_pem, rsa_key

DEVICE_ROOT = "device_root"
DEVICE_INTERMEDIATE = "device_intermediate"
DEVICE_CA = "device_ca"
KEY_BITS = 2048
#: A device certificate is valid this long from the day it is issued.
DEVICE_CERTIFICATE_LIFETIME = timedelta(days=10 * 365)


@dataclass(frozen=True)
class _Profile:
    """How one authority of Apple's chain looks: its name and its (fixed, Apple's) validity."""

    subject: x509.Name
    not_before: datetime
    not_after: datetime


def _apple_name(common_name: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Apple Inc."),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


_PROFILES = {
    DEVICE_ROOT: _Profile(
        _apple_name("Apple Root CA", "Apple Certification Authority"),
        datetime(2006, 4, 25, 21, 40, 36, tzinfo=UTC),
        datetime(2035, 2, 9, 21, 40, 36, tzinfo=UTC),
    ),
    DEVICE_INTERMEDIATE: _Profile(
        _apple_name("Apple iPhone Certification Authority", "Apple Certification Authority"),
        datetime(2007, 4, 12, 17, 43, 28, tzinfo=UTC),
        datetime(2022, 4, 12, 17, 43, 28, tzinfo=UTC),
    ),
    DEVICE_CA: _Profile(
        _apple_name("Apple iPhone Device CA", "Apple iPhone"),
        datetime(2007, 4, 16, 22, 54, 46, tzinfo=UTC),
        datetime(2014, 4, 16, 22, 54, 46, tzinfo=UTC),
    ),
}
#: Each authority and the one that signs it (the root signs itself).
_ISSUERS = {DEVICE_ROOT: None, DEVICE_INTERMEDIATE: DEVICE_ROOT, DEVICE_CA: DEVICE_INTERMEDIATE}


@dataclass(frozen=True)
class DeviceAuthorities:
    """The three authorities of one simulator state."""

    root: Authority
    intermediate: Authority
    device_ca: Authority

    def chain(self) -> list[x509.Certificate]:
        """Device CA first, root last: what follows a device certificate."""
        return [self.device_ca.certificate, self.intermediate.certificate, self.root.certificate]


@dataclass(frozen=True)
class DeviceIdentity:
    """A device's key and certificate, and the chain above it."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: list[x509.Certificate]

    def pem(self) -> str:
        """PKCS#8 ``PRIVATE KEY``, then the device certificate, then the chain (device CA first, root last)."""
        return private_key_pem(self.private_key) + "".join(
            certificate_pem(certificate) for certificate in [self.certificate, *self.chain]
        )


def load_device_authorities(session: Session, *, now: datetime) -> DeviceAuthorities:
    """The state's device authorities, made (and stored with ``session``) the first time they are needed."""
    loaded: dict[str, Authority] = {}
    for name, issuer in _ISSUERS.items():
        signer = None if issuer is None else loaded[issuer]
        loaded[name] = load_or_create(
            session, name, create=functools.partial(_create_authority, name, issuer=signer), now=now
        )
    return DeviceAuthorities(
        root=loaded[DEVICE_ROOT], intermediate=loaded[DEVICE_INTERMEDIATE], device_ca=loaded[DEVICE_CA]
    )


def device_ca_chain_pem(state: SimState) -> str:
    """``GET /factory/device-ca.pem``: the chain as PEM, device CA first, root last."""
    with state.transaction() as session:
        authorities = load_device_authorities(session, now=state.clock.wall_now())
    return "".join(certificate_pem(certificate) for certificate in authorities.chain())


def device_identity(state: SimState, *, serial_number: str, udid: str) -> DeviceIdentity:
    """The device's identity, issued (key and certificate) on its first request and the same ever after.

    The key is made outside any transaction, so a slow key generation never holds the state's write lock; when
    two first requests race, the identity stored first wins and both answer it.
    """
    with state.transaction() as session:
        authorities = load_device_authorities(session, now=state.clock.wall_now())
        row = session.get(SimDeviceIdentity, serial_number)
        if row is not None:
            return _parse_identity(row.private_key_pem, row.certificate_pem, authorities)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    now = state.clock.wall_now()
    certificate = issue_device_certificate(authorities, public_key=key.public_key(), udid=udid, now=now)
    with state.transaction() as session:
        row = session.get(SimDeviceIdentity, serial_number)
        if row is None:
            row = SimDeviceIdentity(
                serial_number=serial_number,
                private_key_pem=private_key_pem(key),
                certificate_pem=certificate_pem(certificate),
                created_at=now,
            )
            session.add(row)
    return _parse_identity(row.private_key_pem, row.certificate_pem, authorities)


def issue_device_certificate(
    authorities: DeviceAuthorities, *, public_key: rsa.RSAPublicKey, udid: str, now: datetime
) -> x509.Certificate:
    """A device certificate for ``udid`` from the device CA, SHA-1 signed, valid from ``now`` for ten years."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, udid),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Cupertino"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Apple Inc."),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "iPhone"),
        ]
    )
    issuer = authorities.device_ca
    start = now.astimezone(UTC).replace(microsecond=0) - timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + DEVICE_CERTIFICATE_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    )
    return _sign_sha1(builder, issuer.key)


def _create_authority(name: str, *, issuer: Authority | None) -> Authority:
    profile = _PROFILES[name]
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    builder = (
        x509.CertificateBuilder()
        .subject_name(profile.subject)
        .issuer_name(profile.subject if issuer is None else issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(profile.not_before)
        .not_valid_after(profile.not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    signer = key if issuer is None else issuer.key
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
    )
    return Authority(certificate=_sign_sha1(builder, signer), key=key)


def _sign_sha1(builder: x509.CertificateBuilder, key: rsa.RSAPrivateKey) -> x509.Certificate:
    """``builder``'s certificate signed with ``sha1WithRSAEncryption``: built and signed with SHA-256 by
    ``cryptography`` (which refuses SHA-1), then its algorithm fields changed and re-signed with SHA-1."""
    draft = builder.sign(key, hashes.SHA256())
    parsed = asn1_x509.Certificate.load(draft.public_bytes(serialization.Encoding.DER))
    tbs = parsed["tbs_certificate"]
    tbs["signature"] = {"algorithm": "sha1_rsa"}
    # SHA-1 on purpose: Apple's device chain is signed with it, and clients must meet that.
    signature = key.sign(tbs.dump(force=True), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    signed = asn1_x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": {"algorithm": "sha1_rsa"}, "signature_value": signature}
    )
    return x509.load_der_x509_certificate(signed.dump())


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@functools.lru_cache(maxsize=4096)
def _parse_device(key_text: str, certificate_text: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    return rsa_key(key_text), x509.load_pem_x509_certificate(certificate_text.encode("ascii"))


def _parse_identity(key_text: str, certificate_text: str, authorities: DeviceAuthorities) -> DeviceIdentity:
    key, certificate = _parse_device(key_text, certificate_text)
    return DeviceIdentity(private_key=key, certificate=certificate, chain=authorities.chain())
