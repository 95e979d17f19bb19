"""The queries of a DeviceInformation command (Apple's ``information.device`` schema, its ``Queries`` names).

The names a device answers, each with where it exists on iOS; the ones Apple defines for macOS only are listed
too, so that asking for one is refused with that reason rather than as an unknown name. The software-update
queries leave with iOS 27, when Apple moves software updates to declarations (reference updates-2026, section 3).
"""

from __future__ import annotations

from pippin.mdm.commands.schema import Availability, Key, Kind

_MACOS_ONLY = Availability(on_ios=False)
_SHARED_IPAD = {
    "MaximumResidentUsers": "9.3",
    "EstimatedResidentUsers": "14.0",
    "QuotaSize": "13.4",
    "ResidentUsers": "13.4",
    "UserSessionTimeout": "14.5",
    "TemporarySessionTimeout": "14.5",
    "TemporarySessionOnly": "14.5",
    "ManagedAppleIDDefaultDomains": "16.0",
    "OnlineAuthenticationGracePeriod": "16.0",
    "SkipLanguageAndLocaleSetupForNewUsers": "16.2",
}
_SINCE = {
    "OrganizationInfo": "7.0",
    "MDMOptions": "7.0",
    "LastCloudBackupDate": "8.0",
    "AwaitingConfiguration": "9.0",
    "iTunesStoreAccountIsActive": "7.0",
    "iTunesStoreAccountHash": "8.0",
    "SupplementalOSVersionExtra": "16.1",
    "SupplementalBuildVersion": "16.1",
    "ModelNumber": "16.4",
    "CellularTechnology": "4.2.6",
    "BatteryLevel": "5.0",
    "IsSupervised": "6.0",
    "IsMultiUser": "9.3",
    "IsDeviceLocatorServiceEnabled": "7.0",
    "IsActivationLockEnabled": "7.0",
    "IsDoNotDisturbInEffect": "7.0",
    "EASDeviceIdentifier": "7.0",
    "IsCloudBackupEnabled": "7.1",
    "IsMDMLostModeEnabled": "9.3",
    "PushToken": "9.3",
    "DiagnosticSubmissionEnabled": "9.3",
    "AppAnalyticsEnabled": "9.3",
    "TimeZone": "14.0",
    "SubscriberCarrierNetwork": "5.0",
    "DataRoamingEnabled": "5.0",
    "VoiceRoamingEnabled": "5.0",
    "PersonalHotspotEnabled": "7.0",
    "IsNetworkTethered": "10.3",
    "IsRoaming": "4.2",
    "SubscriberMCC": "4.2.6",
    "SubscriberMNC": "4.2.6",
    "ServiceSubscriptions": "12.0",
    "DevicePropertiesAttestation": "16.0",
}
_ON_EVERY_IOS = (
    "UDID", "DeviceName", "OSVersion", "BuildVersion", "ModelName", "Model", "ProductName", "SerialNumber",
    "DeviceCapacity", "AvailableDeviceCapacity", "IMEI", "MEID", "ModemFirmwareVersion", "ICCID", "BluetoothMAC",
    "WiFiMAC", "CurrentCarrierNetwork", "CarrierSettingsVersion", "PhoneNumber", "CurrentMCC", "CurrentMNC",
)  # fmt: skip
_NOT_ON_IOS = (
    "ProvisioningUDID", "IsAppleSilicon", "HasBattery", "IsActivationLockSupported", "DeviceID",
    "ActiveManagedUsers", "OSUpdateSettings", "LocalHostName", "HostName", "AutoSetupAdminAccounts",
    "SystemIntegrityProtectionEnabled", "SupportsLOMDevice", "EthernetMAC", "PINRequiredForEraseDevice",
    "PINRequiredForDeviceLock", "SupportsiOSAppInstalls", "EACSPreflight",
)  # fmt: skip

QUERIES: tuple[Key, ...] = (
    *(Key(name, Kind.string) for name in _ON_EVERY_IOS),
    *(Key(name, Kind.string, available=Availability(since=since)) for name, since in _SINCE.items()),
    *(
        Key(name, Kind.string, available=Availability(since=since, supervised=True, shared_ipad_only=True))
        for name, since in _SHARED_IPAD.items()
    ),
    Key("SIMCarrierNetwork", Kind.string, available=Availability(removed="5.0")),
    Key("SoftwareUpdateDeviceID", Kind.string, available=Availability(since="15.0", removed="27.0")),
    Key("SoftwareUpdateSettings", Kind.string, available=Availability(since="14.5", removed="27.0")),
    Key("AccessibilitySettings", Kind.string, available=Availability(since="16.0", supervised=True)),
    *(Key(name, Kind.string, available=_MACOS_ONLY) for name in _NOT_ON_IOS),
)

#: What Pippin's inventory reads from each device (the queue stores the answers on the enrollment).
INVENTORY_QUERIES: tuple[str, ...] = (
    "OSVersion", "BuildVersion", "Model", "ModelName", "ProductName", "DeviceName", "DeviceCapacity",
    "AvailableDeviceCapacity", "BatteryLevel", "IMEI", "MEID", "WiFiMAC", "IsSupervised", "IsActivationLockEnabled",
    "IsDeviceLocatorServiceEnabled", "IsMDMLostModeEnabled", "SerialNumber", "UDID",
)  # fmt: skip

DEVICE_INFORMATION_KEYS: tuple[Key, ...] = (
    Key("Queries", Kind.array, required=True, items=Key("Query", Kind.string, max_chars=64, choices=QUERIES)),
    Key("DeviceAttestationNonce", Kind.data, available=Availability(since="16.0")),
)
