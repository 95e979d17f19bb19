"""The MachineInfo a device in Setup Assistant posts to its enrollment URL: its CMS signature checked, its plist read.

Reference ``apple-mdm-protocol.md`` 0.3 and ``apple-mdm-updates-2026.md`` 4.2-4.4 and 4.17: the body is a CMS
SignedData with the MachineInfo plist attached, signed by the device's own key, whose certificate Apple's iPhone
Device CA issued. Real devices send it BER-encoded with indefinite lengths and SHA-1; ``cryptography`` reads neither
and verifies no CMS at all, so the structure is read with ``asn1crypto`` and each signature checked with
``cryptography``'s primitives. Apple's device CA expired in 2014 and still signs today's devices, so the chain is
checked by hand and validity dates decide nothing: what decides is that the signer's certificate was signed by one
of the configured trust anchors (``mdm/trust_anchors.py``), Apple iPhone Device CA in production.

A hostile body is refused cheaply, before ``asn1crypto`` sees it: at most :data:`MAX_BODY_BYTES`, and its BER
nesting walked once (:func:`check_ber_shape`), at most :data:`MAX_BER_DEPTH` levels and :data:`MAX_BER_ELEMENTS`
elements, ending exactly where the body ends. The plist is read as XML only: a binary plist can be cyclic, and an
XML one may declare entities; both are refused.

MachineInfo is what the device says about itself, signed by a key inside a device Apple made; it is not an
attestation that the device holding the key is the one now talking (reference 4.4, "MDM Me Maybe").
"""

from __future__ import annotations

import base64
import binascii
import plistlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from pippin.crypto.ber_bounds import HostileEncoding, check_ber
from pippin.errors import InvalidInput

#: A MachineInfo is a few hundred bytes of plist and a 3-certificate chain; 64 KiB is what go-apple-dm allows too.
MAX_BODY_BYTES = 64 * 1024
#: SignedData nests about ten levels deep (certificates' names and extensions included); a BER bomb nests thousands.
MAX_BER_DEPTH = 32
#: Elements of a real MachineInfo: a few hundred. Bounds the work of the walk whatever the body holds.
MAX_BER_ELEMENTS = 5_000
#: The longest value Pippin keeps of any MachineInfo string (UDIDs are 25 or 40 characters, serials 10 to 12).
MAX_VALUE_CHARS = 256

#: The keys every MachineInfo carries (``other/machineinfo.yaml``); OS_VERSION only from iOS 17, so it is optional.
REQUIRED_KEYS = ("UDID", "SERIAL", "PRODUCT", "VERSION")
_OPTIONAL_STRINGS = ("OS_VERSION", "IMEI", "MEID", "LANGUAGE")

_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
#: Apple's own plist DOCTYPE (no internal subset, so nothing it could declare); anything else with a ``<!`` is refused.
_APPLE_DOCTYPE = re.compile(rb'<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1\.0//EN" "[^"\[\]<>]*">')


class MachineInfoRefused(InvalidInput):
    """The body is not a MachineInfo signed by a device of the configured trust anchors; nothing was stored."""

    code = "machine_info_refused"


@dataclass(frozen=True)
class MachineInfo:
    """What the device says about itself (``other/machineinfo.yaml``), once its signature checked."""

    udid: str
    serial_number: str
    product: str
    #: The build, e.g. 21A329 (Apple's key ``VERSION``).
    version: str
    #: e.g. 17.0; only from iOS 17.
    os_version: str | None
    imei: str | None
    meid: str | None
    language: str | None
    #: ``MDM_CAN_REQUEST_SOFTWARE_UPDATE``: the device can be told to update before it enrolls (iOS 17+).
    can_request_software_update: bool
    #: The plist exactly as the device signed it.
    raw: bytes


def _refuse(message: str) -> MachineInfoRefused:
    return MachineInfoRefused(
        message, hint="Only a device in Setup Assistant posts here; its body is Apple's signed MachineInfo."
    )


# --- the BER shape, walked before anything parses it ----------------------------------------------------------


def check_ber_shape(body: bytes, *, max_depth: int = MAX_BER_DEPTH, max_elements: int = MAX_BER_ELEMENTS) -> None:
    """Refuse ``body`` unless it is one BER element, nested at most ``max_depth`` deep, of at most ``max_elements``
    (``crypto/ber_bounds.py``: a "BER bomb" costs the walk at most ``max_elements`` steps)."""
    try:
        check_ber(body, max_nesting=max_depth, max_values=max_elements)
    except HostileEncoding as exc:
        raise _refuse(f"The signed body is refused. {exc.message}") from None


# --- the CMS signature ------------------------------------------------------------------------------------------


def _signed_data(body: bytes) -> asn1_cms.SignedData:
    info = asn1_cms.ContentInfo.load(body, strict=True)
    if info["content_type"].native != "signed_data":
        raise _refuse("The body is a CMS message, but not a signed one.")
    signed = info["content"]
    assert isinstance(signed, asn1_cms.SignedData)
    return signed


@dataclass(frozen=True)
class _Carried:
    """A certificate the body carries, as asn1crypto reads it (to match the signer) and as cryptography does."""

    asn1: asn1_x509.Certificate
    certificate: x509.Certificate


def _certificates(signed: asn1_cms.SignedData) -> list[_Carried]:
    found = []
    for choice in signed["certificates"] or []:
        if choice.name != "certificate":
            continue
        try:
            found.append(_Carried(choice.chosen, x509.load_der_x509_certificate(choice.chosen.dump())))
        except ValueError:
            raise _refuse("A certificate in the signed body is damaged.") from None
    return found


def _signer_certificate(sid: Any, carried: Sequence[_Carried]) -> x509.Certificate:
    for candidate in carried:
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            # The serial first, then the issuer's bytes: asn1crypto's name comparison (string prep) costs a
            # millisecond, so it only runs when the bytes differ yet may spell the same name.
            if candidate.asn1.serial_number == wanted["serial_number"].native and (
                candidate.asn1.issuer.dump() == wanted["issuer"].dump() or candidate.asn1.issuer == wanted["issuer"]
            ):
                return candidate.certificate
        elif candidate.asn1.key_identifier is not None and candidate.asn1.key_identifier == sid.chosen.native:
            return candidate.certificate
    raise _refuse("The signed body does not carry its signer's certificate.")


def _single_attribute(attributes: Any, name: str) -> Any:
    values = [attribute["values"] for attribute in attributes if attribute["type"].native == name]
    if len(values) != 1 or len(values[0]) != 1:
        raise _refuse(f"The signature does not carry exactly one {name.replace('_', ' ')}.")
    return values[0][0].native


def _check_signature(public_key: Any, signature: bytes, data: bytes, digest: hashes.HashAlgorithm) -> bool:
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), digest)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(digest))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def _verify_signer(signed: asn1_cms.SignedData, content: bytes, carried: Sequence[_Carried]) -> x509.Certificate:
    """The certificate whose key signed ``content`` through the signer's signed attributes (RFC 5652 5.4)."""
    signers = signed["signer_infos"]
    if len(signers) != 1:
        raise _refuse(f"The signed body has {len(signers)} signers; a device signs its MachineInfo alone.")
    signer = signers[0]
    digest_name = signer["digest_algorithm"]["algorithm"].native
    if digest_name not in _DIGESTS:
        raise _refuse("The body is signed with a digest Pippin does not accept.")
    digest = _DIGESTS[digest_name]()
    signature_algorithm = signer["signature_algorithm"]
    try:
        named_hash = signature_algorithm.hash_algo
    except ValueError:
        named_hash = digest_name  # plain rsaEncryption: the digest algorithm says the hash
    if signature_algorithm.signature_algo not in ("rsassa_pkcs1v15", "ecdsa") or named_hash != digest_name:
        raise _refuse("The body is signed with an algorithm Pippin does not accept.")
    attributes = signer["signed_attrs"]
    if not isinstance(attributes, asn1_cms.CMSAttributes) or not len(attributes):
        raise _refuse("The signature has no signed attributes, so nothing ties it to the MachineInfo.")
    if _single_attribute(attributes, "content_type") != "data":
        raise _refuse("The signature is over some other kind of content than data.")
    hasher = hashes.Hash(_DIGESTS[digest_name]())
    hasher.update(content)
    if _single_attribute(attributes, "message_digest") != hasher.finalize():
        raise _refuse("The signed message digest is not the digest of the MachineInfo: the body was changed.")
    certificate = _signer_certificate(signer["sid"], carried)
    # The signature covers the attributes as a SET OF (tag 0x31), not under the [0] tag they are sent with.
    signed_bytes = b"\x31" + attributes.dump()[1:]
    if not _check_signature(certificate.public_key(), signer["signature"].native, signed_bytes, digest):
        raise _refuse("The MachineInfo's signature does not check with its signer's certificate.")
    return certificate


# --- the chain to a trust anchor --------------------------------------------------------------------------------


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s key signed ``certificate`` (SHA-1 too: Apple's device chain uses it)."""
    if certificate.issuer != issuer.subject:
        return False
    algorithm = certificate.signature_hash_algorithm
    if algorithm is None:
        return False
    return _check_signature(issuer.public_key(), certificate.signature, certificate.tbs_certificate_bytes, algorithm)


def check_chain(leaf: x509.Certificate, *, anchors: Sequence[x509.Certificate]) -> None:
    """Refuse ``leaf`` unless one of ``anchors`` signed it.

    Only the configured certificates may issue the signer, never one the body brings: Apple Root CA also roots
    Apple's developer certificates (through intermediates anyone can download), so a chain completed from the
    body would take a MachineInfo signed with any developer's key. Dates are not checked (module docstring).
    """
    if not any(_issued_by(leaf, anchor) for anchor in anchors):
        raise _refuse("The MachineInfo is not signed by a device of the configured device certificate authority.")


# --- the plist --------------------------------------------------------------------------------------------------


def _xml_plist(content: bytes) -> dict[str, Any]:
    if content.startswith(b"bplist"):
        raise _refuse("The MachineInfo is a binary plist; Pippin reads XML plists only.")
    declarations = content.count(b"<!")
    allowed = len(_APPLE_DOCTYPE.findall(content)) + content.count(b"<!--")
    if b"<!ENTITY" in content.upper() or declarations > allowed or declarations - content.count(b"<!--") > 1:
        raise _refuse("The MachineInfo plist declares a document type or entities; Pippin reads plain plists only.")
    try:
        parsed = plistlib.loads(content, fmt=plistlib.FMT_XML)
    except (plistlib.InvalidFileException, ExpatError, ValueError, TypeError, OverflowError):
        raise _refuse("The MachineInfo is not an XML plist.") from None
    if not isinstance(parsed, dict):
        raise _refuse("The MachineInfo plist is not a dictionary.")
    return parsed


def _string(plist: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = plist.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_VALUE_CHARS or not value.isprintable():
        problem = "lacks" if value is None else "has an unusable"
        raise _refuse(f"The MachineInfo {problem} {key}.")
    return value


def read_machine_info_plist(content: bytes) -> MachineInfo:
    """The MachineInfo in ``content`` (an XML plist), with its required keys checked; no signature is involved."""
    plist = _xml_plist(content)
    required = {key: _string(plist, key, required=True) for key in REQUIRED_KEYS}
    optional = {key: _string(plist, key, required=False) for key in _OPTIONAL_STRINGS}
    can_update = plist.get("MDM_CAN_REQUEST_SOFTWARE_UPDATE", False)
    if not isinstance(can_update, bool):
        raise _refuse("The MachineInfo has an unusable MDM_CAN_REQUEST_SOFTWARE_UPDATE.")
    return MachineInfo(
        udid=str(required["UDID"]),
        serial_number=str(required["SERIAL"]),
        product=str(required["PRODUCT"]),
        version=str(required["VERSION"]),
        os_version=optional["OS_VERSION"],
        imei=optional["IMEI"],
        meid=optional["MEID"],
        language=optional["LANGUAGE"],
        can_request_software_update=can_update,
        raw=content,
    )


def verify_machine_info(body: bytes, *, anchors: Sequence[x509.Certificate]) -> MachineInfo:
    """The MachineInfo ``body`` carries, once its CMS signature chains to ``anchors``; else :class:`MachineInfoRefused`.

    Checked in order of cost: size, BER shape, exactly one signer, content type data, ``messageDigest`` equal to
    the content's digest, the signer's signature over its signed attributes, the chain, then the plist.
    """
    if not anchors:
        raise ValueError("verify_machine_info needs at least one trust anchor")
    if not body:
        raise _refuse("The body is empty; a device posts its signed MachineInfo.")
    if len(body) > MAX_BODY_BYTES:
        raise _refuse(f"The body is larger than any MachineInfo ({MAX_BODY_BYTES // 1024} KiB at most).")
    check_ber_shape(body)
    try:
        signed = _signed_data(body)
        encapsulated = signed["encap_content_info"]
        if encapsulated["content_type"].native != "data":
            raise _refuse("The signed body's content is not data.")
        content = encapsulated["content"].native
        if not isinstance(content, bytes) or not content:
            raise _refuse("The signed body carries no MachineInfo (a detached signature).")
        carried = _certificates(signed)
        signer = _verify_signer(signed, content, carried)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        # asn1crypto parses lazily: damage anywhere shows as one of these at the first field that reads it.
        raise _refuse("The body is not a CMS SignedData.") from None
    check_chain(signer, anchors=anchors)
    return read_machine_info_plist(content)


def read_device_info_header(value: str, *, anchors: Sequence[x509.Certificate]) -> MachineInfo:
    """The MachineInfo of an ``x-apple-aspen-deviceinfo`` header: base64 of the same CMS the enrollment URL gets."""
    compact = "".join(value.split())
    if not compact or len(compact) > (MAX_BODY_BYTES * 4) // 3 + 4 or not compact.isascii():
        raise _refuse("The device info header is empty or longer than any MachineInfo.")
    try:
        body = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse("The device info header is not base64.") from None
    return verify_machine_info(body, anchors=anchors)


__all__ = [
    "MAX_BODY_BYTES",
    "MachineInfo",
    "MachineInfoRefused",
    "check_ber_shape",
    "read_device_info_header",
    "verify_machine_info",
]
