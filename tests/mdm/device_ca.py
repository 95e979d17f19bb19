"""A test device CA shaped like Apple's, and MachineInfo signed the way real devices sign it.

Apple's chain has three levels: Apple Root CA, Apple iPhone Certification Authority, Apple iPhone Device CA (expired
in 2014, still signing), and each device's certificate signed with SHA-1. ``cryptography`` no longer signs
certificates with SHA-1, so those are re-signed here over their TBS with asn1crypto. A device posts its MachineInfo
as BER with indefinite lengths and the content in chunks (``30 80 ... 24 80``): :func:`sign_machine_info` builds
exactly that by hand, or plain DER with SHA-256.
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from asn1crypto import algos as asn1_algos
from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

#: SHA-1 because real devices and Apple's device CA sign with it; this is what Pippin must accept.
_HASHES: dict[str, hashes.HashAlgorithm] = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256()}  # noqa: S303


@cache
def _key(name: str) -> rsa.RSAPrivateKey:
    # One key per role per test run: each takes a fifth of a second to make.
    del name
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Devices Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _resign_sha1(certificate: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """``certificate`` signed again, with SHA-1, by ``issuer_key`` (as Apple's device CA signs)."""
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    tbs = parsed["tbs_certificate"]
    tbs["signature"] = asn1_algos.SignedDigestAlgorithm({"algorithm": "sha1_rsa"})
    signature = issuer_key.sign(tbs.dump(force=True), padding.PKCS1v15(), _HASHES["sha1"])
    rebuilt = asn1_x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": {"algorithm": "sha1_rsa"}, "signature_value": signature}
    )
    return x509.load_der_x509_certificate(rebuilt.dump())


def _certificate(
    subject: str,
    *,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    ca: bool,
    not_before: datetime,
    not_after: datetime,
    sha1: bool,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer is not None else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    certificate = builder.sign(issuer_key, hashes.SHA256())
    return _resign_sha1(certificate, issuer_key) if sha1 else certificate


@dataclass(frozen=True)
class DeviceCA:
    """Root, intermediate and device CA (leaf-most last), and the device CA's key, to issue device identities."""

    root: x509.Certificate
    intermediate: x509.Certificate
    device_ca: x509.Certificate
    device_ca_key: rsa.RSAPrivateKey

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.root, self.intermediate, self.device_ca]

    def pem_bundle(self) -> bytes:
        return b"".join(each.public_bytes(serialization.Encoding.PEM) for each in self.chain)


@dataclass(frozen=True)
class DeviceIdentity:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


@cache
def device_ca(name: str = "Test", *, keys: str | None = None) -> DeviceCA:
    """A three-level CA like Apple's: its device CA expired long ago, as Apple's did in 2014. ``keys`` gives the
    same names other keys (a forger's copy of the CA)."""
    keys = keys or name
    root_key, middle_key, device_key = _key(f"{keys}-root"), _key(f"{keys}-middle"), _key(f"{keys}-device-ca")
    start = datetime(2006, 4, 25, tzinfo=UTC)
    root = _certificate(
        f"{name} Root CA", key=root_key, issuer=None, issuer_key=root_key, ca=True,
        not_before=start, not_after=datetime(2035, 2, 9, tzinfo=UTC), sha1=True,
    )  # fmt: skip
    middle = _certificate(
        f"{name} iPhone Certification Authority", key=middle_key, issuer=root, issuer_key=root_key, ca=True,
        not_before=start, not_after=datetime(2022, 4, 12, tzinfo=UTC), sha1=True,
    )  # fmt: skip
    device = _certificate(
        f"{name} iPhone Device CA", key=device_key, issuer=middle, issuer_key=middle_key, ca=True,
        not_before=start, not_after=datetime(2014, 4, 16, tzinfo=UTC), sha1=True,
    )  # fmt: skip
    return DeviceCA(root=root, intermediate=middle, device_ca=device, device_ca_key=device_key)


def issue_device_identity(ca: DeviceCA, udid: str, *, sha1: bool = True, key_name: str = "device") -> DeviceIdentity:
    """A device certificate for ``udid`` from ``ca``'s device CA (SHA-1, as Apple's)."""
    key = _key(key_name)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    certificate = _certificate(
        udid, key=key, issuer=ca.device_ca, issuer_key=ca.device_ca_key, ca=False,
        not_before=now - timedelta(days=1), not_after=now + timedelta(days=3650), sha1=sha1,
    )  # fmt: skip
    return DeviceIdentity(certificate=certificate, key=key)


def machine_info_plist(
    *,
    serial: str = "C8QH6T96DPNG",
    udid: str = "00008110-000A1B2C3D4E5F60",
    product: str = "iPhone14,5",
    version: str = "21A329",
    os_version: str | None = "17.0",
    can_update: bool | None = True,
    **extra: Any,
) -> bytes:
    """A MachineInfo plist (``other/machineinfo.yaml``) as an iPhone writes it: XML, Apple's DOCTYPE."""
    info: dict[str, Any] = {"UDID": udid, "SERIAL": serial, "PRODUCT": product, "VERSION": version, "LANGUAGE": "en"}
    if os_version is not None:
        info["OS_VERSION"] = os_version
    if can_update is not None:
        info["MDM_CAN_REQUEST_SOFTWARE_UPDATE"] = can_update
    info.update(extra)
    return plistlib.dumps({key: value for key, value in info.items() if value is not None}, fmt=plistlib.FMT_XML)


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + content


def _indefinite(tag: int, *children: bytes) -> bytes:
    return bytes([tag, 0x80]) + b"".join(children) + b"\x00\x00"


def _signer_info(
    content: bytes, identity: DeviceIdentity, *, digest: str, message_digest: bytes | None, content_type: str
) -> asn1_cms.SignerInfo:
    hasher = hashes.Hash(_HASHES[digest])
    hasher.update(content)
    attributes = asn1_cms.CMSAttributes(
        [
            {"type": "content_type", "values": [content_type]},
            {"type": "message_digest", "values": [message_digest or hasher.finalize()]},
            {"type": "signing_time", "values": [asn1_core.UTCTime(datetime(2026, 3, 1, tzinfo=UTC))]},
        ]
    )
    signature = identity.key.sign(attributes.dump(), padding.PKCS1v15(), _HASHES[digest])
    certificate = asn1_x509.Certificate.load(identity.certificate.public_bytes(serialization.Encoding.DER))
    return asn1_cms.SignerInfo(
        {
            "version": "v1",
            "sid": asn1_cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": asn1_cms.IssuerAndSerialNumber(
                        {"issuer": certificate.issuer, "serial_number": certificate.serial_number}
                    )
                }
            ),
            "digest_algorithm": {"algorithm": digest},
            "signed_attrs": attributes,
            "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
            "signature": signature,
        }
    )


def sign_machine_info(
    content: bytes,
    identity: DeviceIdentity,
    *,
    ca: DeviceCA | None = None,
    ber: bool = True,
    digest: str | None = None,
    signers: list[DeviceIdentity] | None = None,
    message_digest: bytes | None = None,
    content_type: str = "data",
    certificates: list[x509.Certificate] | None = None,
) -> bytes:
    """``content`` as a device posts it: CMS SignedData, attached, signed by ``identity`` (and ``signers``, if given,
    instead), carrying the signer certificates and ``ca``'s device CA. BER with indefinite lengths and SHA-1 by
    default; ``ber=False`` gives DER with SHA-256 (unless ``digest`` says otherwise)."""
    digest = digest or ("sha1" if ber else "sha256")
    everyone = signers or [identity]
    infos = [
        _signer_info(content, each, digest=digest, message_digest=message_digest, content_type=content_type)
        for each in everyone
    ]
    carried = certificates if certificates is not None else [each.certificate for each in everyone]
    if ca is not None and certificates is None:
        carried = [*carried, ca.device_ca]
    carried_der = [each.public_bytes(serialization.Encoding.DER) for each in carried]
    digests = asn1_cms.DigestAlgorithms([{"algorithm": digest}])
    if not ber:
        signed = asn1_cms.SignedData(
            {
                "version": "v1",
                "digest_algorithms": digests,
                "encap_content_info": {"content_type": "data", "content": content},
                "certificates": [asn1_x509.Certificate.load(each) for each in carried_der],
                "signer_infos": infos,
            }
        )
        return asn1_cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    chunks = [_der(0x04, content[at : at + 100]) for at in range(0, len(content), 100)]
    encapsulated = _indefinite(0x30, asn1_cms.ContentType("data").dump(), _indefinite(0xA0, _indefinite(0x24, *chunks)))
    signed_data = _indefinite(
        0x30,
        asn1_core.Integer(1).dump(),
        digests.dump(),
        encapsulated,
        _indefinite(0xA0, *carried_der),
        _indefinite(0x31, *(info.dump() for info in infos)),
    )
    return _indefinite(0x30, asn1_cms.ContentType("signed_data").dump(), _indefinite(0xA0, signed_data))
