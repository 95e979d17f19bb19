"""The iOS commands Pippin does not model yet, sent raw: their keys and availability, checked all the same.

From Apple's ``mdm/commands`` schemas (iOS 18.1); the software-update commands are deprecated in iOS 26 and gone in
27 (reference updates-2026, section 3). ``MACOS_ONLY`` names the request types Apple defines for other platforms
only, so that a raw one is refused with that reason rather than as unknown.
"""

from __future__ import annotations

from pippin.mdm.commands.schema import Availability, CommandSpec, Key, Kind
from pippin.mdm.commands.settings_items import APP_ATTRIBUTES

_MACOS_ONLY = Availability(on_ios=False)
_SHARED_IPAD = Availability(since="9.3", shared_ipad_only=True)
_SOFTWARE_UPDATE = Availability(since="9.0", removed="27.0", supervised=True)
_IDENTIFIERS = Key("Identifiers", Kind.array, items=Key("Identifier", Kind.string, max_chars=255))
_SINCE_7 = Availability(since="7.0")
_INSTALL_ACTIONS = ("Default", "DownloadOnly", "InstallASAP", "NotifyOnly", "InstallLater", "InstallForceRestart")


def _spec(request_type: str, since: str, *keys: Key, available: Availability | None = None) -> CommandSpec:
    return CommandSpec(request_type, available=available or Availability(since=since), keys=keys)


OTHERS: tuple[CommandSpec, ...] = (
    _spec(
        "InstallApplication",
        "5.0",
        Key("iTunesStoreID", Kind.integer),
        Key("Identifier", Kind.string, max_chars=255, available=_SINCE_7),
        Key(
            "Options", Kind.dictionary, available=_SINCE_7, keys=(Key("PurchaseMethod", Kind.integer, allowed=(0, 1)),)
        ),
        Key("ManifestURL", Kind.string, available=_SINCE_7),
        Key("ManagementFlags", Kind.integer, allowed=(1, 4, 5)),
        Key("Configuration", Kind.dictionary, free_form=True, available=_SINCE_7),
        Key("Attributes", Kind.dictionary, keys=APP_ATTRIBUTES, available=_SINCE_7),
        Key("ChangeManagementState", Kind.string, allowed=("Managed",), available=Availability(since="9.0")),
        Key("InstallAsManaged", Kind.boolean, available=_MACOS_ONLY),
        Key("iOSApp", Kind.boolean, available=_MACOS_ONLY),
    ),
    _spec(
        "InviteToProgram",
        "7.0",
        Key("ProgramID", Kind.string, required=True, allowed=("com.apple.cloudvpp",)),
        Key("InvitationURL", Kind.string, required=True),
    ),
    _spec(
        "ManagedApplicationList", "5.0", Key("Identifiers", Kind.array, items=_IDENTIFIERS.items, available=_SINCE_7)
    ),
    _spec(
        "ApplyRedemptionCode",
        "5.0",
        Key("Identifier", Kind.string, required=True, max_chars=255),
        Key("RedemptionCode", Kind.string, required=True, max_chars=255),
    ),
    _spec("RemoveApplication", "5.0", Key("Identifier", Kind.string, required=True, max_chars=255)),
    _spec("ValidateApplications", "9.2", _IDENTIFIERS),
    _spec("DeclarativeManagement", "15.0", Key("Data", Kind.data)),
    _spec("ClearActivationLockBypassCode", "7.1", available=Availability(since="7.1", supervised=True)),
    _spec("RefreshCellularPlans", "13.0", Key("eSIMServerURL", Kind.string, required=True)),
    _spec("ClearRestrictionsPassword", "8.0", available=Availability(since="8.0", supervised=True)),
    _spec("Restrictions", "4.0", Key("ProfileRestrictions", Kind.boolean)),
    _spec("ManagedApplicationAttributes", "7.0", Key("Identifiers", Kind.array, True, items=_IDENTIFIERS.items)),
    _spec("ManagedApplicationConfiguration", "7.0", Key("Identifiers", Kind.array, True, items=_IDENTIFIERS.items)),
    _spec(
        "ManagedApplicationFeedback",
        "7.0",
        Key("Identifiers", Kind.array, True, items=_IDENTIFIERS.items),
        Key("DeleteFeedback", Kind.boolean),
    ),
    _spec(
        "InstallMedia",
        "8.0",
        Key("iTunesStoreID", Kind.integer),
        Key("MediaURL", Kind.string),
        Key("MediaType", Kind.string, required=True, allowed=("Book",)),
        Key("PersistentID", Kind.string),
        Key("Kind", Kind.string, allowed=("pdf", "epub", "ibooks")),
        Key("Version", Kind.string),
        Key("Author", Kind.string),
        Key("Title", Kind.string),
    ),
    _spec("ManagedMediaList", "8.0"),
    _spec(
        "RemoveMedia",
        "8.0",
        Key("MediaType", Kind.string, required=True, allowed=("Book",)),
        Key("iTunesStoreID", Kind.string),
        Key("PersistentID", Kind.string),
    ),
    _spec(
        "RequestMirroring",
        "7.0",
        Key("DestinationName", Kind.string),
        Key("DestinationDeviceID", Kind.string),
        Key("ScanTime", Kind.integer),
        Key("Password", Kind.string),
    ),
    _spec("StopMirroring", "7.0", available=Availability(since="7.0", supervised=True)),
    _spec("RequestUnlockToken", "5.0", available=Availability(since="5.0", supervised=True)),
    _spec("InstallProvisioningProfile", "4.0", Key("ProvisioningProfile", Kind.data, required=True)),
    _spec("ProvisioningProfileList", "4.0", Key("ManagedOnly", Kind.boolean, available=Availability(since="13.0"))),
    _spec("RemoveProvisioningProfile", "4.0", Key("UUID", Kind.string, required=True, max_chars=64)),
    _spec("AvailableOSUpdates", "9.0", available=_SOFTWARE_UPDATE),
    _spec(
        "ScheduleOSUpdate",
        "9.0",
        Key(
            "Updates",
            Kind.array,
            required=True,
            items=Key(
                "Update",
                Kind.dictionary,
                required=True,
                keys=(
                    Key("ProductKey", Kind.string),
                    Key("ProductVersion", Kind.string, available=Availability(since="11.3")),
                    Key(
                        "InstallAction",
                        Kind.string,
                        required=True,
                        allowed=_INSTALL_ACTIONS,
                    ),
                    Key("MaxUserDeferrals", Kind.integer, available=_MACOS_ONLY),
                    Key("Priority", Kind.string, available=_MACOS_ONLY),
                ),
            ),
        ),
        available=_SOFTWARE_UPDATE,
    ),
    _spec("OSUpdateStatus", "9.0", available=_SOFTWARE_UPDATE),
    _spec(
        "UserConfigured",
        "17.0",
        available=Availability(since="17.0", supervised=True, requires_ade=True, device_channel=False),
    ),
    CommandSpec(
        "DeleteUser",
        available=_SHARED_IPAD,
        destructive=True,  # a Shared iPad user's data goes with the user
        keys=(
            Key("UserName", Kind.string, max_chars=255),
            Key("ForceDeletion", Kind.boolean),
            Key("DeleteAllUsers", Kind.boolean, available=Availability(since="14.0")),
        ),
    ),
    _spec("UserList", "9.3", available=_SHARED_IPAD),
    _spec("LogOutUser", "9.3", available=_SHARED_IPAD),
)

MACOS_ONLY: frozenset[str] = frozenset(
    {
        "AccountConfiguration", "ActiveNSExtensions", "NSExtensionMappings", "InstallEnterpriseApplication",
        "ContentCachingInformation", "LOMDeviceRequest", "LOMSetupRequest", "SetFirmwarePassword",
        "VerifyFirmwarePassword", "SetRecoveryLock", "VerifyRecoveryLock", "DisableRemoteDesktop",
        "EnableRemoteDesktop", "RotateFileVaultKey", "SetAutoAdminPassword", "ScheduleOSUpdateScan",
        "UnlockUserAccount",
    }
)  # fmt: skip
