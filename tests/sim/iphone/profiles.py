"""An enrollment profile as an MDM server builds one (reference §1): anchors, a SCEP identity, the MDM payload."""

from __future__ import annotations

import plistlib
from typing import Any

from cryptography.hazmat.primitives import serialization

from tests.sim.iphone.pki import DeviceIdentity

TOPIC = "com.apple.mgmt.External.2b4c5f1e-7a0d-4c55-9d4e-2f3a1b6c7d8e"
SCEP_UUID = "8C6E0F3A-3D2B-4B5E-9F10-6A1B2C3D4E5F"


def enrollment_profile(
    *,
    base_url: str = "https://mdm.example.com",
    anchor: DeviceIdentity | None = None,
    locked: bool = False,
    mdm: dict[str, Any] | None = None,
    challenge: str = "one-time-challenge",
) -> dict[str, Any]:
    payloads: list[dict[str, Any]] = [
        {
            "PayloadType": "com.apple.mdm",
            "PayloadIdentifier": "com.example.mdm.mdm",
            "PayloadUUID": "0B8E7A52-62F4-4B7B-8D1C-1A2B3C4D5E6F",
            "PayloadVersion": 1,
            "IdentityCertificateUUID": SCEP_UUID,
            "Topic": TOPIC,
            "ServerURL": f"{base_url}/mdm/connect",
            "CheckInURL": f"{base_url}/mdm/checkin",
            "SignMessage": True,
            "AccessRights": 8191,
            "CheckOutWhenRemoved": True,
            **(mdm or {}),
        },
        {
            "PayloadType": "com.apple.security.scep",
            "PayloadIdentifier": "com.example.mdm.scep",
            "PayloadUUID": SCEP_UUID,
            "PayloadVersion": 1,
            "PayloadContent": {
                "URL": f"{base_url}/mdm/scep",
                "Subject": [[["O", "Example"]], [["CN", "MDM identity"]]],
                "Challenge": challenge,
                "Keysize": 2048,
                "Key Usage": 5,
            },
        },
    ]
    if anchor is not None:
        payloads.append(
            {
                "PayloadType": "com.apple.security.root",
                "PayloadIdentifier": "com.example.mdm.anchor",
                "PayloadUUID": "5F3C2B1A-0E9D-4C8B-A7F6-E5D4C3B2A190",
                "PayloadVersion": 1,
                "PayloadContent": anchor.certificate.public_bytes(serialization.Encoding.DER),
            }
        )
    profile: dict[str, Any] = {
        "PayloadType": "Configuration",
        "PayloadIdentifier": "com.example.mdm.enrollment",
        "PayloadUUID": "3E1D2C4B-5A69-4788-9A0B-C1D2E3F40516",
        "PayloadVersion": 1,
        "PayloadDisplayName": "MDM enrollment",
        "PayloadContent": payloads,
    }
    if locked:
        profile["PayloadRemovalDisallowed"] = True
    return profile


def plist(profile: dict[str, Any]) -> bytes:
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)
