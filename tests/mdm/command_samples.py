"""Configuration profiles and representative parameters for every command Pippin builds, for the catalog's tests."""

from __future__ import annotations

import plistlib
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID


def profile_plist(*payloads: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A Configuration profile holding ``payloads`` (a Wi-Fi payload when none is given)."""
    if not payloads:
        payloads = (
            {
                "PayloadType": "com.apple.wifi.managed",
                "PayloadIdentifier": "com.example.wifi.payload",
                "PayloadUUID": str(uuid.uuid4()).upper(),
                "PayloadVersion": 1,
                "SSID_STR": "Example",
                "EncryptionType": "WPA2",
                "Password": "correct horse",
            },
        )
    return {
        "PayloadType": "Configuration",
        "PayloadIdentifier": "com.example.wifi",
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadVersion": 1,
        "PayloadDisplayName": "Wi-Fi",
        "PayloadContent": list(payloads),
        **top,
    }


def profile(*payloads: dict[str, Any], **top: Any) -> bytes:
    """A .mobileconfig as an XML plist."""
    return plistlib.dumps(profile_plist(*payloads, **top), fmt=plistlib.FMT_XML)


def mdm_profile() -> bytes:
    """An enrollment profile, as Return to Service's MDMProfileData carries it."""
    return profile(
        {
            "PayloadType": "com.apple.mdm",
            "PayloadIdentifier": "com.example.mdm.payload",
            "PayloadUUID": str(uuid.uuid4()).upper(),
            "PayloadVersion": 1,
            "ServerURL": "https://mdm.example.com/mdm/connect",
            "CheckInURL": "https://mdm.example.com/mdm/checkin",
            "Topic": "com.apple.mgmt.External.0f1e2d3c",
            "IdentityCertificateUUID": str(uuid.uuid4()).upper(),
            "AccessRights": 8191,
        },
        PayloadIdentifier="com.example.mdm",
    )


@cache
def _signer() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example profile signer")])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def signed(content: bytes, *, detached: bool = False) -> bytes:
    """``content`` in a DER CMS SignedData, as an admin's signing tool makes a signed .mobileconfig."""
    key, certificate = _signer()
    options = [pkcs7.PKCS7Options.DetachedSignature] if detached else []
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(certificate, key, hashes.SHA256())
    return builder.sign(serialization.Encoding.DER, options)


WALLPAPER = b"\x89PNG\r\n\x1a\n" + bytes(64)

#: (request type, parameters) for every command Pippin models, covering each key it lets an admin set.
MODELLED_SAMPLES: list[tuple[str, dict[str, Any]]] = [
    ("DeviceInformation", {}),
    ("DeviceInformation", {"Queries": ["UDID", "TimeZone", "ModelNumber"], "DeviceAttestationNonce": b"n" * 32}),
    ("SecurityInfo", {}),
    ("ProfileList", {"ManagedOnly": True}),
    ("InstallProfile", {"Payload": profile()}),
    ("InstallProfile", {"Payload": signed(profile())}),
    ("RemoveProfile", {"Identifier": "com.example.wifi"}),
    ("InstalledApplicationList", {"Identifiers": ["com.example.app"], "ManagedAppsOnly": True, "Items": ["Name"]}),
    ("CertificateList", {"ManagedOnly": False}),
    ("DeviceLock", {"Message": "Return to IT", "PhoneNumber": "+1 555 0100"}),
    ("EraseDevice", {"PreserveDataPlan": True, "DisallowProximitySetup": True}),
    (
        "EraseDevice",
        {
            "ReturnToService": {
                "Enabled": True,
                "WiFiProfileData": profile(),
                "MDMProfileData": mdm_profile(),
                "BootstrapToken": b"token",
                "ShouldRetryEnrollment": True,
            }
        },
    ),
    ("ClearPasscode", {"UnlockToken": b"\x01\x02unlock"}),
    ("RestartDevice", {}),
    ("ShutDownDevice", {}),
    (
        "Settings",
        {
            "Settings": [
                {"Item": "DeviceName", "DeviceName": "Reception iPad"},
                {"Item": "Wallpaper", "Image": WALLPAPER, "Where": 3},
                {"Item": "DataRoaming", "Enabled": False},
                {"Item": "PersonalHotspot", "Enabled": True},
                {"Item": "Bluetooth", "Enabled": True},
                {"Item": "TimeZone", "TimeZone": "Europe/Paris"},
                {"Item": "OrganizationInfo", "OrganizationInfo": {"OrganizationName": "Example"}},
                {"Item": "MDMOptions", "MDMOptions": {"ActivationLockAllowedWhileSupervised": True}},
                {"Item": "ApplicationConfiguration", "Identifier": "com.example.app", "Configuration": {"a": [1]}},
                {"Item": "ApplicationAttributes", "Identifier": "com.example.app", "Attributes": {"Removable": False}},
                {"Item": "SoftwareUpdateSettings", "RecommendationCadence": 1},
                {"Item": "AccessibilitySettings", "BoldTextEnabled": True, "TextSize": 5},
            ]
        },
    ),
    (
        "Settings",
        {
            "Settings": [
                {
                    "Item": "SharedDeviceConfiguration",
                    "QuotaSize": 8,
                    "PasscodePolicy": {"PasscodeLockGracePeriod": 300},
                    "AwaitUserConfiguration": {"Enabled": True},
                },
                {"Item": "DiagnosticSubmission", "Enabled": False},
                {"Item": "PasscodeLockGracePeriod", "PasscodeLockGracePeriod": 60},
            ]
        },
    ),
    ("EnableLostMode", {"Message": "Lost", "PhoneNumber": "+1 555 0100", "Footnote": "Reward"}),
    ("DisableLostMode", {}),
    ("DeviceLocation", {}),
    ("PlayLostModeSound", {}),
    ("ActivationLockBypassCode", {}),
    ("DeviceConfigured", {}),
]

#: Apple's Command dict for every other iOS command, sent as Raw.
RAW_SAMPLES: list[dict[str, Any]] = [
    {
        "RequestType": "InstallApplication",
        "iTunesStoreID": 361309726,
        "Options": {"PurchaseMethod": 1},
        "ManagementFlags": 1,
        "Configuration": {"server": "https://example.com"},
        "Attributes": {"AssociatedDomains": ["example.com"], "Removable": False},
        "ChangeManagementState": "Managed",
    },
    {"RequestType": "InviteToProgram", "ProgramID": "com.apple.cloudvpp", "InvitationURL": "https://example.com/i"},
    {"RequestType": "ManagedApplicationList", "Identifiers": ["com.example.app"]},
    {"RequestType": "ApplyRedemptionCode", "Identifier": "com.example.app", "RedemptionCode": "ABC"},
    {"RequestType": "RemoveApplication", "Identifier": "com.example.app"},
    {"RequestType": "ValidateApplications", "Identifiers": ["com.example.app"]},
    {"RequestType": "DeclarativeManagement", "Data": b"{}"},
    {"RequestType": "ClearActivationLockBypassCode"},
    {"RequestType": "RefreshCellularPlans", "eSIMServerURL": "https://esim.example.com"},
    {"RequestType": "ClearRestrictionsPassword"},
    {"RequestType": "Restrictions", "ProfileRestrictions": True},
    {"RequestType": "ManagedApplicationAttributes", "Identifiers": ["com.example.app"]},
    {"RequestType": "ManagedApplicationConfiguration", "Identifiers": ["com.example.app"]},
    {"RequestType": "ManagedApplicationFeedback", "Identifiers": ["com.example.app"], "DeleteFeedback": True},
    {"RequestType": "InstallMedia", "MediaURL": "https://example.com/b.pdf", "MediaType": "Book", "Kind": "pdf"},
    {"RequestType": "ManagedMediaList"},
    {"RequestType": "RemoveMedia", "MediaType": "Book", "PersistentID": "com.example.book"},
    {"RequestType": "RequestMirroring", "DestinationName": "Room 1", "ScanTime": 30},
    {"RequestType": "StopMirroring"},
    {"RequestType": "RequestUnlockToken"},
    {"RequestType": "InstallProvisioningProfile", "ProvisioningProfile": b"0\x80"},
    {"RequestType": "ProvisioningProfileList", "ManagedOnly": True},
    {"RequestType": "RemoveProvisioningProfile", "UUID": str(uuid.uuid4())},
    {"RequestType": "AvailableOSUpdates"},
    {"RequestType": "ScheduleOSUpdate", "Updates": [{"ProductVersion": "18.2", "InstallAction": "InstallASAP"}]},
    {"RequestType": "OSUpdateStatus"},
    {"RequestType": "DeleteUser", "UserName": "student1", "ForceDeletion": True},
    {"RequestType": "UserList"},
    {"RequestType": "LogOutUser"},
    {"RequestType": "EraseDevice", "PreserveDataPlan": False},
]
