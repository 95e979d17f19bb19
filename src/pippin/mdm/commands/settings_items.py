"""The items of a Settings command (Apple's ``settings`` schema): each a dictionary whose ``Item`` names its kind.

Each item has its own availability (a device name needs supervision, a time zone iOS 14, the Shared iPad items a
Shared iPad); the Settings command itself needs none. ``SoftwareUpdateSettings`` leaves with iOS 27 (reference
updates-2026, section 3).
"""

from __future__ import annotations

from pippin.mdm.commands.schema import Availability, Key, Kind

_UUID = 36  # the managed VPN, content filter, DNS proxy, relay, cellular slice payloads are named by UUID
_GRACE_PERIODS = (0, 60, 300, 900, 3600, 14400)

#: An app's attributes (also InstallApplication's ``Attributes``).
APP_ATTRIBUTES: tuple[Key, ...] = (
    Key("VPNUUID", Kind.string, max_chars=_UUID),
    Key("ContentFilterUUID", Kind.string, max_chars=_UUID, available=Availability(since="16.0")),
    Key("DNSProxyUUID", Kind.string, max_chars=_UUID, available=Availability(since="16.0")),
    Key("RelayUUID", Kind.string, max_chars=_UUID, available=Availability(since="17.0")),
    Key(
        "AssociatedDomains",
        Kind.array,
        items=Key("AssociatedDomain", Kind.string, max_chars=255),
        available=Availability(since="13.0"),
    ),
    Key("AssociatedDomainsEnableDirectDownloads", Kind.boolean, available=Availability(since="14.0")),
    Key("Removable", Kind.boolean, available=Availability(since="14.0")),
    Key("TapToPayScreenLock", Kind.boolean, available=Availability(since="16.4")),
    Key("CellularSliceUUID", Kind.string, max_chars=_UUID, available=Availability(since="17.0")),
    Key("Hideable", Kind.boolean, available=Availability(since="18.1")),
    Key("Lockable", Kind.boolean, available=Availability(since="18.1")),
)


def _item(name: str, *keys: Key, available: Availability = Availability()) -> Key:
    return Key(
        name, Kind.dictionary, available=available, keys=(Key("Item", Kind.string, True, allowed=(name,)), *keys)
    )


def _enabled(name: str, available: Availability = Availability()) -> Key:
    return _item(name, Key("Enabled", Kind.boolean, required=True), available=available)


SETTINGS_ITEMS: tuple[Key, ...] = (
    _item(
        "Wallpaper",
        Key("Image", Kind.data, required=True),
        Key("Where", Kind.integer, required=True, allowed=(1, 2, 3)),
        available=Availability(since="8.0", supervised=True),
    ),
    _enabled("DataRoaming"),
    _enabled("VoiceRoaming"),
    _enabled("PersonalHotspot"),
    _enabled("Bluetooth", Availability(since="11.3", supervised=True)),
    _item(
        "ApplicationConfiguration",
        Key("Identifier", Kind.string, required=True, max_chars=255),
        Key("Configuration", Kind.dictionary, free_form=True),
        available=Availability(since="7.0"),
    ),
    _item(
        "ApplicationAttributes",
        Key("Identifier", Kind.string, required=True, max_chars=255),
        Key("Attributes", Kind.dictionary, keys=APP_ATTRIBUTES),
        available=Availability(since="7.0"),
    ),
    _item(
        "DeviceName",
        Key("DeviceName", Kind.string, required=True, max_chars=255),
        available=Availability(supervised=True),
    ),
    _item("HostName", Key("HostName", Kind.string, required=True), available=Availability(on_ios=False)),
    _item(
        "OrganizationInfo",
        Key(
            "OrganizationInfo",
            Kind.dictionary,
            keys=(
                Key("OrganizationName", Kind.string, required=True, max_chars=255),
                Key("OrganizationShortName", Kind.string, max_chars=255, available=Availability(since="13.0")),
                Key("OrganizationAddress", Kind.string, max_chars=1024),
                Key("OrganizationPhone", Kind.string, max_chars=64),
                Key("OrganizationEmail", Kind.string, max_chars=255),
                Key("OrganizationMagic", Kind.string, max_chars=255),
            ),
        ),
    ),
    _item(
        "MDMOptions",
        Key(
            "MDMOptions",
            Kind.dictionary,
            required=True,
            keys=(
                Key("ActivationLockAllowedWhileSupervised", Kind.boolean),
                Key("BootstrapTokenAllowed", Kind.boolean, available=Availability(on_ios=False)),
                Key(
                    "PromptUserToAllowBootstrapTokenForAuthentication",
                    Kind.boolean,
                    available=Availability(on_ios=False),
                ),
            ),
        ),
        available=Availability(since="7.0"),
    ),
    _item(
        "MaximumResidentUsers",
        Key("MaximumResidentUsers", Kind.integer, required=True),
        available=Availability(since="9.3", shared_ipad_only=True),
    ),
    _item(
        "SharedDeviceConfiguration",
        Key("QuotaSize", Kind.integer),
        Key("ResidentUsers", Kind.integer),
        Key("UserSessionTimeout", Kind.integer, available=Availability(since="14.5")),
        Key("TemporarySessionTimeout", Kind.integer, available=Availability(since="14.5")),
        Key("TemporarySessionOnly", Kind.boolean, available=Availability(since="14.5")),
        Key(
            "ManagedAppleIDDefaultDomains",
            Kind.array,
            items=Key("AppleID domain", Kind.string, max_chars=255),
            available=Availability(since="16.0"),
        ),
        Key("OnlineAuthenticationGracePeriod", Kind.integer, available=Availability(since="16.0")),
        Key("SkipLanguageAndLocaleSetupForNewUsers", Kind.boolean, available=Availability(since="16.2")),
        Key(
            "AwaitUserConfiguration",
            Kind.dictionary,
            keys=(Key("Enabled", Kind.boolean, required=True),),
            available=Availability(since="17.0"),
        ),
        Key(
            "PasscodePolicy",
            Kind.dictionary,
            keys=(
                Key("PasscodeLockGracePeriod", Kind.integer, allowed=_GRACE_PERIODS),
                Key("AutoLockTime", Kind.integer),
            ),
            available=Availability(since="17.0"),
        ),
        available=Availability(since="13.4", shared_ipad_only=True),
    ),
    _enabled("DiagnosticSubmission", Availability(since="9.3", shared_ipad_only=True)),
    _enabled("AppAnalytics", Availability(since="9.3.2", shared_ipad_only=True)),
    _item(
        "PasscodeLockGracePeriod",
        Key("PasscodeLockGracePeriod", Kind.integer, required=True, allowed=_GRACE_PERIODS),
        available=Availability(since="9.3.2", shared_ipad_only=True),
    ),
    _item(
        "TimeZone",
        Key("TimeZone", Kind.string, required=True, max_chars=64),
        available=Availability(since="14.0", supervised=True),
    ),
    _item(
        "SoftwareUpdateSettings",
        Key("RecommendationCadence", Kind.integer, required=True, allowed=(0, 1, 2)),
        available=Availability(since="14.5", removed="27.0", supervised=True),
    ),
    _item(
        "AccessibilitySettings",
        Key("BoldTextEnabled", Kind.boolean),
        Key("IncreaseContrastEnabled", Kind.boolean),
        Key("ReduceMotionEnabled", Kind.boolean),
        Key("ReduceTransparencyEnabled", Kind.boolean),
        Key("TextSize", Kind.integer, allowed=tuple(range(12))),
        Key("TouchAccommodationsEnabled", Kind.boolean),
        Key("VoiceOverEnabled", Kind.boolean),
        Key("ZoomEnabled", Kind.boolean),
        Key("GrayscaleEnabled", Kind.boolean, available=Availability(on_ios=False)),
        available=Availability(since="16.0", supervised=True),
    ),
)

SETTINGS_KEYS: tuple[Key, ...] = (
    Key("Settings", Kind.array, required=True, items=Key("Setting", Kind.dictionary, choices=SETTINGS_ITEMS)),
)
