"""The check of a configuration profile (a .mobileconfig) before an InstallProfile command carries it.

A profile is an XML plist, or a CMS SignedData with that plist attached (signed by the admin's own tools; the
device checks the signature, Pippin only that the signed content is a profile). Apple's ``TopLevel`` profile
schema: ``PayloadType`` ``Configuration``, ``PayloadIdentifier``, ``PayloadUUID``, ``PayloadVersion`` 1, and the
payloads (or their encrypted form). Pippin reads XML plists only: ``plistlib`` parses a self-referencing binary
plist into a cyclic object (reference updates-2026, section 1); entity declarations are refused before parsing.
BER is walked for hostile nesting before asn1crypto recurses into it (``crypto/ber_bounds.py``).
"""

from __future__ import annotations

import plistlib
import re
from typing import Any
from xml.parsers.expat import ExpatError

from asn1crypto import cms as asn1_cms

from pippin.crypto.ber_bounds import HostileEncoding, check_ber
from pippin.mdm.commands.schema import MAX_DATA_BYTES, CommandRejected

#: A profile of Wi-Fi, certificates and restrictions is a few kilobytes; one with a wallpaper or many
#: certificates stays far below this.
MAX_PROFILE_BYTES = MAX_DATA_BYTES
_APPLE_DOCTYPE = re.compile(rb'<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1\.0//EN" "[^"\[\]<>]*">')
#: A signed profile nests about ten BER levels (certificates' names and extensions included).
_MAX_BER_NESTING = 32
_MAX_BER_VALUES = 20_000
#: The payload that enrolls a device: iOS takes one only, from the enrollment itself.
_MDM_PAYLOAD = "com.apple.mdm"


def _refuse(where: str, reason: str) -> CommandRejected:
    return CommandRejected(f"{where} is not a profile Pippin sends: {reason}.")


def _xml_plist(content: bytes, where: str) -> dict[str, Any]:
    if content.startswith(b"bplist"):
        raise _refuse(where, "it is a binary plist; Pippin sends XML plists only")
    declarations = content.count(b"<!") - content.count(b"<!--")
    if b"<!ENTITY" in content.upper() or declarations > len(_APPLE_DOCTYPE.findall(content)) or declarations > 1:
        raise _refuse(where, "its plist declares a document type or entities")
    try:
        parsed = plistlib.loads(content, fmt=plistlib.FMT_XML)
    except (plistlib.InvalidFileException, ExpatError, ValueError, TypeError, OverflowError):
        raise _refuse(where, "it is not a well-formed XML plist") from None
    if not isinstance(parsed, dict):
        raise _refuse(where, "its plist is not a dictionary")
    return parsed


def _signed_content(body: bytes, where: str) -> bytes:
    try:
        check_ber(body, max_nesting=_MAX_BER_NESTING, max_values=_MAX_BER_VALUES)
    except HostileEncoding as exc:
        raise _refuse(where, f"it is neither an XML plist nor a well-formed CMS message ({exc.message})") from None
    try:
        info = asn1_cms.ContentInfo.load(body, strict=True)
        if info["content_type"].native != "signed_data":
            raise _refuse(where, "it is a CMS message, but not a signed one")
        encapsulated = info["content"]["encap_content_info"]
        content = encapsulated["content"].native
    except (ValueError, TypeError, KeyError):
        raise _refuse(where, "it is neither an XML plist nor a well-formed CMS SignedData") from None
    if encapsulated["content_type"].native != "data" or not isinstance(content, bytes) or not content:
        raise _refuse(where, "its signature does not carry the profile (detached, or empty)")
    return content


def _identifiers(payload: dict[str, Any], where: str) -> None:
    for name in ("PayloadIdentifier", "PayloadUUID", "PayloadType"):
        value = payload.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > 1024:
            raise _refuse(where, f"it lacks a usable {name}")


def check_profile(body: bytes, *, where: str, mdm_payload: bool = False) -> dict[str, Any]:
    """The profile plist in ``body`` (XML, or CMS-signed XML), checked; :class:`CommandRejected` says why not.

    ``mdm_payload``: the profile is the enrollment itself (Return to Service's ``MDMProfileData``), so it must
    hold the MDM payload rather than must not."""
    if len(body) > MAX_PROFILE_BYTES:
        raise _refuse(where, f"it is larger than {MAX_PROFILE_BYTES} bytes")
    if not body.strip():
        raise _refuse(where, "it is empty")
    stripped = body.removeprefix(b"\xef\xbb\xbf").lstrip()
    if stripped.startswith(b"bplist"):
        raise _refuse(where, "it is a binary plist; Pippin sends XML plists only")
    content = stripped if stripped[:1] == b"<" else _signed_content(body, where)
    profile = _xml_plist(content, where)
    _identifiers(profile, where)
    if profile["PayloadType"] != "Configuration":
        raise _refuse(where, "its PayloadType is not Configuration")
    version = profile.get("PayloadVersion")
    if version != 1 or isinstance(version, bool):
        raise _refuse(where, "its PayloadVersion is not 1")
    payloads = profile.get("PayloadContent")
    encrypted = profile.get("EncryptedPayloadContent")
    if payloads is None and isinstance(encrypted, bytes) and encrypted:
        return profile  # encrypted to the device's identity: only the device can read its payloads
    if not isinstance(payloads, list) or not all(isinstance(payload, dict) for payload in payloads):
        raise _refuse(where, "its PayloadContent is not a list of payloads")
    for index, payload in enumerate(payloads):
        _identifiers(payload, f"{where} (payload {index})")
    holds_mdm = any(payload["PayloadType"] == _MDM_PAYLOAD for payload in payloads)
    if holds_mdm and not mdm_payload:
        raise _refuse(where, "it holds an MDM payload, which a device takes only from its enrollment")
    if mdm_payload and not holds_mdm:
        raise _refuse(where, "it holds no MDM payload")
    return profile
