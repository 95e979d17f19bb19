"""What each MDM command does to a simulated device, and what the device answers (reference section 3.1).

Answers carry the response keys of Apple's ``mdm/commands/*.yaml`` for the command; what a command changes (name,
lock, Lost Mode, settings, installed profiles, passcode) is written into the device's state, which the device then
saves. Commands the device runs only when supervised (``supervised: true`` in Apple's schema) are answered on an
unsupervised device as iOS answers them, with the unknown-command error (12021). Error codes: 12021 and 12013 are
from captured iOS answers (``fixtures/commandment``), an invalid profile is MCInstallationErrorDomain 4000 over
MCProfileErrorDomain 1000 as iOS logs it, DeviceConfigured outside Setup Assistant is MDMDeviceEnrollment 101
(reference updates-2026, section 2); the others (12067 for Lost Mode, 12003 for a wrong unlock token, 12001 and
12081 for a Settings item, 4001 for an MDM payload over MDM) are this simulator's choice.
"""

from __future__ import annotations

import hashlib
import plistlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from pippin.sim.iphone.answer_rates import AnswerRates, injected_failure
from pippin.sim.iphone.cms import CMSError, read_signed_data
from pippin.sim.iphone.command_reading import (
    Aftermath,
    Answer,
    Command,
    CommandFailed,
    CommandFormatError,
    CommandUnreadable,
    ErrorEntry,
    not_a_valid_request_type,
    read_command,
    read_envelope,
)
from pippin.sim.iphone.device_facts import os_version, query_responses
from pippin.sim.iphone.device_state import DeviceState
from pippin.sim.iphone.errors import SetupFailed
from pippin.sim.iphone.managed_state import LostMode
from pippin.sim.iphone.profiles import MDM_TYPE, Profile, ProfileStore, read_profile

__all__ = ["Answer", "CommandAnswers", "CommandUnreadable"]

Result = dict[str, Any] | tuple[dict[str, Any], Aftermath]
#: Commands that only read the device: one handed out again is simply answered again.
_QUERIES = frozenset(
    {
        "DeviceInformation", "SecurityInfo", "ProfileList", "InstalledApplicationList", "CertificateList",
        "DeviceLocation", "ProvisioningProfileList", "ManagedApplicationList", "RestrictionsList",
    }
)  # fmt: skip
_PAYLOAD_TEXT = ("PayloadDisplayName", "PayloadDescription", "PayloadOrganization")
_BYPASS_ALPHABET = "0123456789ACDEFGHJKLMNPQRTUVWXYZ"
#: Apps a device has from the App Store before management installs any (InstalledApplicationList).
_APPS = (
    ("com.apple.Keynote", "Keynote", "14.2", "7434"),
    ("com.apple.Pages", "Pages", "14.2", "7434"),
    ("com.apple.Numbers", "Numbers", "14.2", "7434"),
)


def _in_lost_mode_only(request_type: str) -> CommandFailed:
    return CommandFailed(ErrorEntry(12067, "MCMDMErrorDomain", f"{request_type} needs the device in Lost Mode."))


class CommandAnswers:
    """Runs the server's commands on one device: its state, its installed profiles, the CAs it trusts."""

    def __init__(
        self,
        state: DeviceState,
        profiles: ProfileStore,
        *,
        trust: list[x509.Certificate],
        rates: AnswerRates | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.state = state
        self.profiles = profiles
        self._trust = trust
        self._rates = rates or AnswerRates()
        self._clock = clock
        self._handlers: dict[str, tuple[Callable[[Command], Result], bool]] = {
            "DeviceInformation": (self._device_information, False),
            "SecurityInfo": (self._security_info, False),
            "ProfileList": (self._profile_list, False),
            "InstallProfile": (self._install_profile, False),
            "RemoveProfile": (self._remove_profile, False),
            "InstalledApplicationList": (self._installed_applications, False),
            "CertificateList": (self._certificate_list, False),
            "DeviceLock": (self._device_lock, False),
            "EraseDevice": (self._erase, False),
            "ClearPasscode": (self._clear_passcode, False),
            "RestartDevice": (lambda _: ({}, Aftermath.restart), True),
            "ShutDownDevice": (lambda _: ({}, Aftermath.shut_down), True),
            "Settings": (self._settings, False),
            "EnableLostMode": (self._enable_lost_mode, True),
            "DisableLostMode": (self._disable_lost_mode, True),
            "DeviceLocation": (self._device_location, True),
            "PlayLostModeSound": (self._play_lost_mode_sound, True),
            "ActivationLockBypassCode": (self._bypass_code, True),
            "DeviceConfigured": (self._device_configured, True),
        }

    # --- the loop's entry ------------------------------------------------------------------------------------------

    def answer(self, body: bytes) -> Answer:
        """The answer to the server's command in ``body``; :class:`CommandUnreadable` when it names no command.

        A command answered before and handed out again (its answer never reached the server) is recognised by its
        CommandUUID: a query is answered afresh, anything that changes the device is not run again, and the device
        says again what it said."""
        command_uuid, raw = read_envelope(body)
        managed = self.state.managed
        said = managed.answered.get(command_uuid)
        if said is not None:
            managed.repeated_deliveries += 1
            named = raw.get("RequestType") if isinstance(raw, dict) else None
            if named not in _QUERIES:
                return Answer({"CommandUUID": command_uuid, "Status": said}, request_type=named)
        answer = self._answer_once(command_uuid, raw)
        if answer.report.get("Status") != "NotNow":
            managed.remember_answer(command_uuid, str(answer.report.get("Status")))
        return answer

    def _answer_once(self, command_uuid: str, raw: Any) -> Answer:
        report: dict[str, Any] = {"CommandUUID": command_uuid}
        udid = self.state.facts.udid if self.state.facts else self.state.serial_number
        managed = self.state.managed
        if command_uuid not in managed.not_now_given and self._rates.puts_off(udid, command_uuid):
            managed.remember_not_now(command_uuid)
            named = raw.get("RequestType") if isinstance(raw, dict) else None
            return Answer({**report, "Status": "NotNow"}, request_type=named if isinstance(named, str) else None)
        try:
            command = read_command(command_uuid, raw)
        except CommandFormatError:
            return Answer({**report, "Status": "CommandFormatError"})
        if self._rates.fails(udid, command_uuid):
            return Answer({**report, "Status": "Error", **_chain(injected_failure(command.request_type))})
        try:
            handler, supervised_only = self._handlers.get(command.request_type, (None, False))
            if handler is None or (supervised_only and not managed.supervised):
                raise not_a_valid_request_type(command.request_type)
            result = handler(command)
        except CommandFormatError:
            return Answer({**report, "Status": "CommandFormatError"}, request_type=command.request_type)
        except CommandFailed as failed:
            return Answer({**report, "Status": "Error", **_chain(failed)}, request_type=command.request_type)
        keys, aftermath = result if isinstance(result, tuple) else (result, None)
        return Answer({**report, "Status": "Acknowledged", **keys}, aftermath, request_type=command.request_type)

    # --- inventory ------------------------------------------------------------------------------------------------

    def _device_information(self, command: Command) -> Result:
        queries = command.required("Queries", list)
        if not all(isinstance(q, str) for q in queries):
            raise CommandFormatError("DeviceInformation.Queries holds a name that is not a string")
        return {"QueryResponses": query_responses(self.state, queries)}

    def _security_info(self, _: Command) -> Result:
        managed = self.state.managed
        info: dict[str, Any] = {
            "HardwareEncryptionCaps": 3,  # block and file level
            "PasscodePresent": managed.passcode_present,
            "PasscodeCompliant": True,
            "PasscodeCompliantWithProfiles": True,
            "PasscodeLockGracePeriodEnforced": 0,
            "ManagementStatus": {"IsUserEnrollment": False},
        }
        if self.state.facts is not None and os_version(self.state.facts) >= (17, 0):
            info["AutoLockTime"] = 30  # seconds; reported from iOS 17
        return {"SecurityInfo": info}

    def _installed_applications(self, command: Command) -> Result:
        wanted = command.optional("Identifiers", list)
        if command.optional("ManagedAppsOnly", bool):
            return {"InstalledApplicationList": []}  # management has installed no apps
        listed = []
        for identifier, name, version, build in _APPS:
            if wanted is not None and identifier not in wanted:
                continue
            listed.append(
                {
                    "Identifier": identifier,
                    "Name": name,
                    "ShortVersion": version,
                    "Version": build,
                    "BundleSize": 700_000_000 + len(name) * 1_000_000,
                    "DynamicSize": 12_000_000,
                    "Installing": False,
                    "IsValidated": True,
                    "AppStoreVendable": True,
                    "DeviceBasedVPP": False,
                    "BetaApp": False,
                    "AdHocCodeSigned": False,
                    "HasUpdateAvailable": False,
                    "IsAppClip": False,
                    "Source": "com.apple.AppStore",
                }
            )
        return {"InstalledApplicationList": listed}

    def _certificate_list(self, _: Command) -> Result:
        certificates: list[x509.Certificate] = []
        identity = self.state.mdm_identity
        found = [(identity.certificate, True)] if identity else []
        for profile in self.profiles.installed():
            certificates.extend(profile.anchors())
        found.extend((certificate, False) for certificate in certificates)
        return {
            "CertificateList": [
                {
                    "CommonName": _common_name(certificate),
                    "IsIdentity": is_identity,
                    "Data": certificate.public_bytes(serialization.Encoding.DER),
                }
                for certificate, is_identity in found
            ]
        }

    # --- profiles ---------------------------------------------------------------------------------------------

    def _profile_list(self, command: Command) -> Result:
        managed_only = command.optional("ManagedOnly", bool)
        listed = []
        for profile in self.profiles.installed():
            is_managed = profile.identifier in self.state.managed.managed_profiles
            if managed_only and not is_managed and profile.payload_of(MDM_TYPE) is None:
                continue
            listed.append(_listed_profile(profile, is_managed=is_managed))
        return {"ProfileList": listed}

    def _install_profile(self, command: Command) -> Result:
        data = command.required("Payload", bytes)
        profile = self._read_profile(data)
        if profile.payload_of(MDM_TYPE) is not None:
            raise CommandFailed(
                ErrorEntry(4001, "MCInstallationErrorDomain", "An MDM payload cannot be installed over MDM."),
            )
        current = self.profiles.find(profile.identifier)
        if current is not None and current.payload_of(MDM_TYPE) is not None:
            raise CommandFailed(
                ErrorEntry(4001, "MCInstallationErrorDomain", "The profile would replace the MDM profile.")
            )
        self.profiles.install(profile)
        managed = self.state.managed.managed_profiles
        if profile.identifier not in managed:
            managed.append(profile.identifier)
        return {}

    def _read_profile(self, data: bytes) -> Profile:
        """The profile as iOS installs one over MDM: verified when signed by a CA it trusts, else installed as
        not verified (an MDM server's profiles need no trusted signer), refused when it is no profile."""
        try:
            return read_profile(data, trusted=self._trust)
        except SetupFailed as refused:
            reason = refused.reason
            if "signed by a certificate the device does not trust" in reason:
                try:
                    return read_profile(read_signed_data(data).content, trusted=())
                except (CMSError, SetupFailed) as again:
                    reason = again.reason if isinstance(again, SetupFailed) else str(again)
        raise CommandFailed(
            ErrorEntry(4000, "MCInstallationErrorDomain", "The profile cannot be installed: invalid profile."),
            ErrorEntry(1000, "MCProfileErrorDomain", f"Invalid Profile ({reason})"),
        )

    def _remove_profile(self, command: Command) -> Result:
        identifier = command.required("Identifier", str)
        profile = self.profiles.find(identifier)
        managed = self.state.managed.managed_profiles
        if profile is None or (identifier not in managed and profile.payload_of(MDM_TYPE) is None):
            raise CommandFailed(
                ErrorEntry(12013, "MCMDMErrorDomain", f"The profile “{identifier[:200]}” is not managed by MDM.")
            )
        if profile.payload_of(MDM_TYPE) is not None:
            return {}, Aftermath.unenroll  # the device removes it once the server has its answer
        self.profiles.remove(identifier, by_user=False)
        managed.remove(identifier)
        return {}

    # --- lock, erase, passcode ---------------------------------------------------------------------------------

    def _device_lock(self, command: Command) -> Result:
        message = command.optional("Message", str)
        phone = command.optional("PhoneNumber", str)
        managed = self.state.managed
        managed.locked = True
        managed.lock_message, managed.lock_phone_number = message, phone
        if message is None and phone is None:
            return {}
        if managed.lost_mode is not None:
            result = "DeviceInLostMode"
        elif not managed.passcode_present:
            result = "NoPasscodeSet"
        else:
            result = "Success"
        return {"MessageResult": result}

    def _erase(self, command: Command) -> Result:
        command.optional("PreserveDataPlan", bool)
        command.optional("DisallowProximitySetup", bool)
        command.optional("ReturnToService", dict)
        return {}, Aftermath.erase

    def _clear_passcode(self, command: Command) -> Result:
        token = command.required("UnlockToken", bytes)
        if self.state.unlock_token is None or token != self.state.unlock_token:
            raise CommandFailed(ErrorEntry(12003, "MCMDMErrorDomain", "The unlock token is not valid."))
        self.state.managed.passcode_present = False
        return {}

    # --- settings ---------------------------------------------------------------------------------------------

    def _settings(self, command: Command) -> Result:
        items = command.required("Settings", list)
        if not all(isinstance(item, dict) and isinstance(item.get("Item"), str) for item in items):
            raise CommandFormatError("Settings holds an item without its Item name")
        return {"Settings": [self._setting(item) for item in items]}

    def _setting(self, item: dict[str, Any]) -> dict[str, Any]:
        name: str = item["Item"]
        result: dict[str, Any] = {}
        identifier = item.get("Identifier")
        if isinstance(identifier, str):
            result["Identifier"] = identifier
        try:
            self._apply_setting(name, item)
        except CommandFailed as failed:
            return {**result, "Status": "Error", **_chain(failed)}
        return {**result, "Status": "Acknowledged"}

    def _apply_setting(self, name: str, item: dict[str, Any]) -> None:
        managed = self.state.managed
        supervised_only = {"DeviceName", "Wallpaper", "Bluetooth", "TimeZone", "SoftwareUpdateSettings"}
        if name in supervised_only and not managed.supervised:
            raise CommandFailed(ErrorEntry(12081, "MCMDMErrorDomain", f"{name} requires a supervised device."))
        value_keys = {
            "DeviceName": ("DeviceName", str),
            "DataRoaming": ("Enabled", bool),
            "VoiceRoaming": ("Enabled", bool),
            "PersonalHotspot": ("Enabled", bool),
            "Bluetooth": ("Enabled", bool),
            "TimeZone": ("TimeZone", str),
            "MDMOptions": ("MDMOptions", dict),
            "SoftwareUpdateSettings": ("RecommendationCadence", int),
        }
        if name in value_keys:
            key, kind = value_keys[name]
            value: Any = item.get(key)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise CommandFailed(ErrorEntry(12001, "MCMDMErrorDomain", f"The {name} setting has no valid {key}."))
            if name == "DeviceName":
                managed.device_name = _device_name(value)
            else:
                managed.settings[name] = value
        elif name == "OrganizationInfo":
            info = {k: v for k, v in item.items() if k.startswith("Organization") and isinstance(v, str)}
            if "OrganizationName" not in info:
                raise CommandFailed(ErrorEntry(12001, "MCMDMErrorDomain", "OrganizationInfo has no OrganizationName."))
            managed.settings["OrganizationInfo"] = info
        elif name not in ("Wallpaper", "ApplicationConfiguration", "ApplicationAttributes", "AccessibilitySettings"):
            raise CommandFailed(ErrorEntry(12001, "MCMDMErrorDomain", f"“{name[:64]}” is not a known setting."))

    # --- Lost Mode and Activation Lock ----------------------------------------------------------------------------

    def _enable_lost_mode(self, command: Command) -> Result:
        message = command.optional("Message", str)
        phone = command.optional("PhoneNumber", str)
        footnote = command.optional("Footnote", str)
        if message is None and phone is None:
            raise CommandFormatError("EnableLostMode needs a Message or a PhoneNumber")
        self.state.managed.lost_mode = LostMode(message=message, phone_number=phone, footnote=footnote)
        return {}

    def _disable_lost_mode(self, command: Command) -> Result:
        if self.state.managed.lost_mode is None:
            raise _in_lost_mode_only(command.request_type)
        self.state.managed.lost_mode = None
        return {}

    def _device_location(self, command: Command) -> Result:
        if self.state.managed.lost_mode is None or self.state.facts is None:
            raise _in_lost_mode_only(command.request_type)
        serial = self.state.facts.serial_number
        offset = int.from_bytes(hashlib.sha256(f"where:{serial}".encode()).digest()[:4], "big") / 2**32
        return {
            "Latitude": 59.3293 + (offset - 0.5) / 10,
            "Longitude": 18.0686 + (offset - 0.5) / 5,
            "HorizontalAccuracy": 10.0,
            "VerticalAccuracy": 4.0,
            "Altitude": 28.0,
            "Speed": 0.0,
            "Course": -1.0,
            "Timestamp": self._clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def _play_lost_mode_sound(self, command: Command) -> Result:
        lost = self.state.managed.lost_mode
        if lost is None:
            raise _in_lost_mode_only(command.request_type)
        lost.sounds_played += 1
        return {}

    def _bypass_code(self, _: Command) -> Result:
        managed = self.state.managed
        if managed.activation_lock_bypass_code is None:
            seed = hashlib.sha256(f"bypass:{self.state.serial_number}:{managed.erasures}".encode()).digest()
            letters = "".join(_BYPASS_ALPHABET[b % len(_BYPASS_ALPHABET)] for b in seed[:25])
            managed.activation_lock_bypass_code = "-".join(letters[i : i + 5] for i in range(0, 25, 5))
        return {"ActivationLockBypassCode": managed.activation_lock_bypass_code}

    def _device_configured(self, _: Command) -> Result:
        managed = self.state.managed
        if not managed.awaiting_configuration:
            raise CommandFailed(ErrorEntry(101, "MDMDeviceEnrollment", "Device is not AwaitingConfiguration."))
        managed.awaiting_configuration = False
        return {}


def _device_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise CommandFailed(ErrorEntry(12001, "MCMDMErrorDomain", "The device name is not valid."))
    return value


def _chain(failed: CommandFailed) -> dict[str, Any]:
    return {"ErrorChain": [entry.as_plist() for entry in failed.chain]}


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else certificate.subject.rfc4514_string()
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _listed_profile(profile: Profile, *, is_managed: bool) -> dict[str, Any]:
    top = plistlib.loads(profile.plist)
    listed: dict[str, Any] = {
        "PayloadIdentifier": profile.identifier,
        "PayloadUUID": profile.uuid,
        "PayloadVersion": top.get("PayloadVersion", 1),
        "PayloadRemovalDisallowed": profile.removal_disallowed,
        "HasRemovalPasscode": False,
        "IsEncrypted": False,
        "IsManaged": is_managed or profile.payload_of(MDM_TYPE) is not None,
        "PayloadContent": [
            {
                "PayloadType": payload["PayloadType"],
                "PayloadVersion": payload["PayloadVersion"],
                "PayloadIdentifier": payload["PayloadIdentifier"],
                "PayloadUUID": payload["PayloadUUID"],
                **{k: payload[k] for k in _PAYLOAD_TEXT if isinstance(payload.get(k), str)},
            }
            for payload in profile.payloads
        ],
    }
    for key in ("PayloadDisplayName", "PayloadOrganization", "PayloadDescription"):
        if isinstance(top.get(key), str):
            listed[key] = top[key]
    return listed
