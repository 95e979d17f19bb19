"""The commands Pippin models for admins (issue 13's list), with the checks beyond each key's type.

Availability and keys as Apple's ``mdm/commands`` schemas give them for iOS; ``ReturnToService`` gains
``BootstrapToken`` (iOS 26) and ``ShouldRetryEnrollment`` (iOS 27) after the 18.1 schemas (reference
updates-2026, section 3 and correction 11), and its ``MDMProfileData`` is required on a device that is not
supervised or was not enrolled through ADE. Message lengths are Pippin's bounds (a lock screen shows a few lines).
"""

from __future__ import annotations

from collections.abc import Callable

from pippin.mdm.commands.device_queries import DEVICE_INFORMATION_KEYS
from pippin.mdm.commands.profile_body import check_profile
from pippin.mdm.commands.schema import Availability, CommandRejected, CommandSpec, DeviceFacts, Key, Kind
from pippin.mdm.commands.settings_items import SETTINGS_KEYS

_MACOS_ONLY = Availability(on_ios=False)
_IN_LOST_MODE = Availability(since="9.3", supervised=True, lost_mode=True)
_MESSAGE = 1024
_APP_LIST_ITEMS = (
    "AdHocCodeSigned", "AppStoreVendable", "BetaApp", "BundleSize", "DeviceBasedVPP", "DistributorIdentifier",
    "DynamicSize", "ExternalVersionIdentifier", "HasUpdateAvailable", "Identifier", "Installing", "IsAppClip",
    "IsValidated", "Name", "ShortVersion", "Version",
)  # fmt: skip
_PHONE_NUMBER = 64


def _check_device_information(command: dict[str, object], device: DeviceFacts | None) -> None:
    queries = command["Queries"]
    assert isinstance(queries, list)
    if not queries:
        raise CommandRejected("DeviceInformation.Queries is empty: name at least one query.")
    repeated = sorted({str(q) for q in queries if queries.count(q) > 1})
    if repeated:
        raise CommandRejected(f"DeviceInformation.Queries names {', '.join(repeated)} more than once.")


def _check_install_profile(command: dict[str, object], device: DeviceFacts | None) -> None:
    payload = command["Payload"]
    assert isinstance(payload, bytes)
    check_profile(payload, where="InstallProfile.Payload")


def _check_not_blank(request_type: str, key: str) -> Callable[[dict[str, object], DeviceFacts | None], None]:
    def check(command: dict[str, object], device: DeviceFacts | None) -> None:
        value = command[key]
        if isinstance(value, str | bytes) and not value.strip():
            raise CommandRejected(f"{request_type}.{key} is empty.")

    return check


def _check_erase(command: dict[str, object], device: DeviceFacts | None) -> None:
    service = command.get("ReturnToService")
    if not isinstance(service, dict):
        return
    for key in ("WiFiProfileData", "MDMProfileData"):
        profile = service.get(key)
        if isinstance(profile, bytes):
            check_profile(profile, where=f"EraseDevice.ReturnToService.{key}", mdm_payload=key == "MDMProfileData")
    fetches_enrollment = device is None or (device.supervised is not False and device.enrolled_through_ade is not False)
    if service["Enabled"] and "MDMProfileData" not in service and not fetches_enrollment:
        raise CommandRejected(
            "EraseDevice.ReturnToService needs MDMProfileData: the device is not supervised or was not "
            "enrolled through Automated Device Enrollment, so it cannot fetch its enrollment after the erase."
        )


def _check_lost_mode(command: dict[str, object], device: DeviceFacts | None) -> None:
    if not any(isinstance(command.get(k), str) and str(command[k]).strip() for k in ("Message", "PhoneNumber")):
        raise CommandRejected("EnableLostMode needs a Message or a PhoneNumber for the lock screen.")


def _check_settings(command: dict[str, object], device: DeviceFacts | None) -> None:
    if not command["Settings"]:
        raise CommandRejected("Settings.Settings is empty: give at least one item.")


_RETURN_TO_SERVICE = Key(
    "ReturnToService",
    Kind.dictionary,
    available=Availability(since="17.0"),
    keys=(
        Key("Enabled", Kind.boolean, required=True),
        Key("WiFiProfileData", Kind.data),
        Key("MDMProfileData", Kind.data),
        Key("BootstrapToken", Kind.data, available=Availability(since="26.0")),
        Key("ShouldRetryEnrollment", Kind.boolean, available=Availability(since="27.0")),
    ),
)

MODELLED: tuple[CommandSpec, ...] = (
    CommandSpec("DeviceInformation", keys=DEVICE_INFORMATION_KEYS, extra_check=_check_device_information),
    CommandSpec("SecurityInfo"),
    CommandSpec("ProfileList", keys=(Key("ManagedOnly", Kind.boolean, available=Availability(since="13.0")),)),
    CommandSpec("InstallProfile", keys=(Key("Payload", Kind.data, required=True),), extra_check=_check_install_profile),
    CommandSpec(
        "RemoveProfile",
        keys=(Key("Identifier", Kind.string, required=True, max_chars=1024),),
        extra_check=_check_not_blank("RemoveProfile", "Identifier"),
    ),
    CommandSpec(
        "InstalledApplicationList",
        available=Availability(since="5.0"),
        keys=(
            Key(
                "Identifiers",
                Kind.array,
                items=Key("Identifier", Kind.string, max_chars=255),
                available=Availability(since="7.0"),
            ),
            Key("ManagedAppsOnly", Kind.boolean, available=Availability(since="7.0")),
            Key(
                "Items",
                Kind.array,
                available=Availability(since="14.0"),
                items=Key(
                    "Item",
                    Kind.string,
                    allowed=_APP_LIST_ITEMS,
                ),
            ),
        ),
    ),
    CommandSpec("CertificateList", keys=(Key("ManagedOnly", Kind.boolean, available=Availability(since="13.0")),)),
    CommandSpec(
        "DeviceLock",
        destructive=True,
        keys=(
            Key("Message", Kind.string, max_chars=_MESSAGE, available=Availability(since="7.0")),
            Key("PhoneNumber", Kind.string, max_chars=_PHONE_NUMBER, available=Availability(since="7.0")),
            Key("PIN", Kind.string, available=_MACOS_ONLY),
        ),
    ),
    CommandSpec(
        "EraseDevice",
        destructive=True,
        keys=(
            Key("PreserveDataPlan", Kind.boolean, available=Availability(since="11.0")),
            Key("DisallowProximitySetup", Kind.boolean, available=Availability(since="11.3")),
            Key("PIN", Kind.string, available=_MACOS_ONLY),
            Key("ObliterationBehavior", Kind.string, available=_MACOS_ONLY),
            _RETURN_TO_SERVICE,
        ),
        extra_check=_check_erase,
    ),
    CommandSpec(
        "ClearPasscode",
        destructive=True,
        keys=(Key("UnlockToken", Kind.data, required=True),),
        extra_check=_check_not_blank("ClearPasscode", "UnlockToken"),
    ),
    CommandSpec(
        "RestartDevice",
        available=Availability(since="10.3", supervised=True),
        keys=(
            Key("RebuildKernelCache", Kind.boolean, available=_MACOS_ONLY),
            Key("KextPaths", Kind.array, available=_MACOS_ONLY),
            Key("NotifyUser", Kind.boolean, available=_MACOS_ONLY),
        ),
    ),
    CommandSpec("ShutDownDevice", available=Availability(since="10.3", supervised=True)),
    CommandSpec("Settings", available=Availability(since="5.0"), keys=SETTINGS_KEYS, extra_check=_check_settings),
    CommandSpec(
        "EnableLostMode",
        available=Availability(since="9.3", supervised=True),
        destructive=True,
        keys=(
            Key("Message", Kind.string, max_chars=_MESSAGE),
            Key("PhoneNumber", Kind.string, max_chars=_PHONE_NUMBER),
            Key("Footnote", Kind.string, max_chars=_MESSAGE),
        ),
        extra_check=_check_lost_mode,
    ),
    CommandSpec("DisableLostMode", available=_IN_LOST_MODE),
    CommandSpec("DeviceLocation", available=_IN_LOST_MODE),
    CommandSpec("PlayLostModeSound", available=Availability(since="10.3", supervised=True, lost_mode=True)),
    CommandSpec("ActivationLockBypassCode", available=Availability(since="7.1", supervised=True)),
    CommandSpec("DeviceConfigured", available=Availability(since="9.0", supervised=True, requires_ade=True)),
)
