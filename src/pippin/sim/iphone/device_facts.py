"""What a device answers to DeviceInformation: its factory facts, the hardware derived from them, and its state.

The factory gives UDID, serial, product type, OS and, for cellular devices, IMEI and MEID (``identity.py``). What
else a real device reports (its model number, capacity, MAC addresses, battery) is derived here from the serial
number, so the same device answers the same on every run and after a restart. Names and values are those of
Apple's ``information.device.yaml`` ``QueryResponses``; a query the device does not know is left out of the
answer, as iOS leaves out what it does not have.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pippin.sim.iphone.device_state import DeviceState
from pippin.sim.iphone.identity import DeviceFacts

#: Queries a device answers only from an iOS version on (``information.device.yaml``), and until one (iOS 27 moves
#: software updates to declarations, reference updates-2026 section 3).
_SINCE = {"ServiceSubscriptions": (12, 0), "TimeZone": (14, 0), "SoftwareUpdateDeviceID": (15, 0)}
_UNTIL = {"SoftwareUpdateDeviceID": (27, 0)}
#: Storage sizes Apple sells, in GB; DeviceCapacity is a little less (what the file system shows).
_CAPACITIES = (64, 128, 256, 512)
_REGIONS = ("LL/A", "ZD/A", "B/A", "J/A")


def _number(serial: str, purpose: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{purpose}:{serial}".encode()).digest()[:8], "big")


def _mac(serial: str, purpose: str) -> str:
    octets = _number(serial, purpose).to_bytes(8, "big")[:6]
    first = (octets[0] | 0x02) & 0xFE  # locally administered, unicast: never a real vendor's address
    return ":".join(f"{b:02x}" for b in (first, *octets[1:]))


@dataclass(frozen=True)
class Hardware:
    """The facts of one device's hardware, stable for its serial number."""

    model_name: str  # "iPhone" or "iPad"
    model: str  # Apple's part number, e.g. "MTJV3LL/A"
    model_number: str  # the part number without its region
    capacity_gb: float
    available_gb: float
    battery_level: float
    wifi_mac: str
    bluetooth_mac: str
    iccid: str | None
    modem_firmware: str | None

    @classmethod
    def of(cls, facts: DeviceFacts) -> Hardware:
        serial = facts.serial_number
        family = "iPad" if facts.product.startswith("iPad") else "iPhone"
        number = _number(serial, "model")
        model_number = f"M{'ABCDEFGHJKLMNPQRSTUVWXYZ'[number % 24]}{number % 1000:03d}{'ABCDEFGH'[number % 8]}"
        capacity = _CAPACITIES[_number(serial, "capacity") % len(_CAPACITIES)]
        cellular = facts.imei is not None
        iccid = f"8901{_number(serial, 'iccid') % 10**15:015d}" if cellular else None
        return cls(
            model_name=family,
            model=model_number + _REGIONS[number % len(_REGIONS)],
            model_number=model_number,
            capacity_gb=round(capacity * 0.93, 2),
            available_gb=round(capacity * (0.35 + (_number(serial, "free") % 50) / 100), 2),
            battery_level=round(0.2 + (_number(serial, "battery") % 80) / 100, 2),
            wifi_mac=_mac(serial, "wifi"),
            bluetooth_mac=_mac(serial, "bluetooth"),
            iccid=iccid,
            modem_firmware="1.50.02" if cellular else None,
        )


def device_name(state: DeviceState) -> str:
    """The device's name: what Settings named it, else the name it leaves the factory with."""
    assert state.facts is not None
    return state.managed.device_name or Hardware.of(state.facts).model_name


def _answers(state: DeviceState) -> dict[str, Callable[[], Any]]:
    facts, managed = state.facts, state.managed
    assert facts is not None
    hardware = Hardware.of(facts)
    settings = managed.settings
    answers: dict[str, Callable[[], Any]] = {
        "UDID": lambda: facts.udid,
        "SerialNumber": lambda: facts.serial_number,
        "ProductName": lambda: facts.product,
        "OSVersion": lambda: facts.os_version,
        "BuildVersion": lambda: facts.build_version,
        "DeviceName": lambda: device_name(state),
        "Model": lambda: hardware.model,
        "ModelName": lambda: hardware.model_name,
        "ModelNumber": lambda: hardware.model_number,
        "DeviceCapacity": lambda: hardware.capacity_gb,
        "AvailableDeviceCapacity": lambda: hardware.available_gb,
        "BatteryLevel": lambda: hardware.battery_level,
        "WiFiMAC": lambda: hardware.wifi_mac,
        "BluetoothMAC": lambda: hardware.bluetooth_mac,
        "IsSupervised": lambda: managed.supervised,
        "IsMultiUser": lambda: False,
        # Find My turns Activation Lock on; on a supervised device only when MDMOptions allow it.
        "IsActivationLockEnabled": lambda: (
            bool(settings.get("MDMOptions", {}).get("ActivationLockAllowedWhileSupervised"))
            if managed.supervised
            else True
        ),
        "IsDeviceLocatorServiceEnabled": lambda: True,
        "IsMDMLostModeEnabled": lambda: managed.lost_mode is not None,
        "IsCloudBackupEnabled": lambda: False,
        "IsDoNotDisturbInEffect": lambda: False,
        "AwaitingConfiguration": lambda: managed.awaiting_configuration,
        "TimeZone": lambda: settings.get("TimeZone", "Europe/Stockholm"),
        "DataRoamingEnabled": lambda: bool(settings.get("DataRoaming", False)),
        "VoiceRoamingEnabled": lambda: bool(settings.get("VoiceRoaming", True)),
        "PersonalHotspotEnabled": lambda: bool(settings.get("PersonalHotspot", False)),
        "IsRoaming": lambda: False,
        "IsNetworkTethered": lambda: False,
        "DiagnosticSubmissionEnabled": lambda: False,
        "AppAnalyticsEnabled": lambda: False,
        "MDMOptions": lambda: dict(settings.get("MDMOptions", {})),
        "EASDeviceIdentifier": lambda: f"{_number(facts.serial_number, 'eas'):020X}"[:20],
        "SoftwareUpdateDeviceID": lambda: facts.product,
    }
    if "OrganizationInfo" in settings:  # only once a Settings command gave it
        organization = dict(settings["OrganizationInfo"])
        answers["OrganizationInfo"] = lambda: organization
    if state.push_token:
        token = bytes.fromhex(state.push_token)
        answers["PushToken"] = lambda: token
    if facts.imei is not None:
        answers.update(
            {
                "IMEI": lambda: facts.imei,
                "ICCID": lambda: hardware.iccid,
                "ModemFirmwareVersion": lambda: hardware.modem_firmware,
                "CellularTechnology": lambda: 3 if facts.meid else 1,  # 1 GSM, 3 GSM and CDMA
                "CurrentCarrierNetwork": lambda: "Telia",
                "SubscriberCarrierNetwork": lambda: "Telia",
                "CarrierSettingsVersion": lambda: "60.0",
                "SubscriberMCC": lambda: "240",
                "SubscriberMNC": lambda: "01",
                "CurrentMCC": lambda: "240",
                "CurrentMNC": lambda: "01",
                "ServiceSubscriptions": lambda: [
                    {
                        "CarrierSettingsVersion": "60.0",
                        "CurrentCarrierNetwork": "Telia",
                        "CurrentMCC": "240",
                        "CurrentMNC": "01",
                        "ICCID": hardware.iccid,
                        "IMEI": facts.imei,
                        "IsDataPreferred": True,
                        "IsRoaming": False,
                        "IsVoicePreferred": True,
                        "Label": "Primary",
                        "LabelID": "8B4E6C7A-0F0E-4E34-9A5E-3C1B1A2D3E4F",
                        "SubscriberCarrierNetwork": "Telia",
                        "Slot": "CTSubscriptionSlotOne",
                    }
                ],
            }
        )
        if facts.meid:
            answers["MEID"] = lambda: facts.meid
    return answers


def os_version(facts: DeviceFacts) -> tuple[int, int]:
    """The device's iOS version as (major, minor); (0, 0) for one it cannot read."""
    parts = [*facts.os_version.split("."), "0"][:2]
    return (int(parts[0]), int(parts[1])) if all(p.isdigit() for p in parts) else (0, 0)


def _available(name: str, version: tuple[int, int]) -> bool:
    return version >= _SINCE.get(name, (0, 0)) and version < _UNTIL.get(name, (999, 0))


def query_responses(state: DeviceState, queries: Sequence[str]) -> dict[str, Any]:
    """DeviceInformation's ``QueryResponses`` for ``queries``: those the device knows on its iOS, each once."""
    assert state.facts is not None
    answers, version = _answers(state), os_version(state.facts)
    return {name: answers[name]() for name in dict.fromkeys(queries) if name in answers and _available(name, version)}
