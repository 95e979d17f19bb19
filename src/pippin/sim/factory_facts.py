"""What a simulated device knows about itself from the factory: UDID, product type, OS, IMEI and MEID.

Every fact is derived from the device's row (its serial above all), never stored, so a restarted simulator, a
second simulator on the same state and every client agree on them without a migration of the devices table.

- UDID: devices with an A12 chip or newer (2018 on) have Apple's 25-character form ``CCCCCCCC-EEEEEEEEEEEEEEEE``,
  the chip id and the ECID in uppercase hex; older ones the 40 lowercase hex digits of a SHA-1 (here of the
  serial). The ECID is a hash of the serial.
- Product type (``PRODUCT`` in MachineInfo): Apple's identifier of the model, for iPads the Wi-Fi or cellular
  variant, e.g. ``iPhone17,3`` or ``iPad13,18``. A model name the catalogue does not know (renamed in the portal)
  falls back to the newest model of the device's family.
- OS version and build: a release of iOS or iPadOS 18 that the model can run, with Apple's build number for it
  (macOS 15 for the Macs that tests write into the devices table).
- IMEI and MEID: only for cellular devices (every iPhone, iPads sold with cellular); the first of the IMEIs and
  MEIDs the portal reports for the device (protocol-10 ``imei``/``meid``), with a valid Luhn check digit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pippin.sim.models import SimDevice

_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
#: The first chip id with the 25-character UDID (A12, 0x8020); earlier chips have the 40-hex form.
_NEW_UDID_SINCE_CHIP = 0x8020


@dataclass(frozen=True)
class ProductLine:
    """Apple's identifiers for one marketing model: the product types and the chip they are built on."""

    wifi_product: str
    cellular_product: str | None  # iPhones are cellular only: their one product type is ``wifi_product``
    chip_id: int


#: Marketing name (as in ``inventory.CATALOGUE``) -> product types and chip (Apple's device identifiers).
PRODUCT_LINES: dict[str, ProductLine] = {
    "iPhone 16 Pro": ProductLine("iPhone17,1", None, 0x8140),
    "iPhone 16": ProductLine("iPhone17,3", None, 0x8140),
    "iPhone 15 Pro": ProductLine("iPhone16,1", None, 0x8130),
    "iPhone 15": ProductLine("iPhone15,4", None, 0x8120),
    "iPhone 14": ProductLine("iPhone14,7", None, 0x8110),
    "iPhone 13": ProductLine("iPhone14,5", None, 0x8110),
    "iPhone SE (3rd generation)": ProductLine("iPhone14,6", None, 0x8110),
    "iPad Air (5th generation)": ProductLine("iPad13,16", "iPad13,17", 0x8103),
    "iPad (10th generation)": ProductLine("iPad13,18", "iPad13,19", 0x8101),
    "iPad mini (6th generation)": ProductLine("iPad14,1", "iPad14,2", 0x8110),
    "iPad Pro 11-inch (4th generation)": ProductLine("iPad14,3", "iPad14,4", 0x8112),
    "iPad (7th generation)": ProductLine("iPad7,11", "iPad7,12", 0x8010),
    # Not in the portal's catalogue; Macs reach the simulator only through tests that write devices directly.
    "MacBook Air (M2)": ProductLine("Mac14,2", None, 0x8112),
}
_FAMILY_DEFAULT = {"iPhone": "iPhone 16", "iPad": "iPad (10th generation)", "Mac": "MacBook Air (M2)"}

#: iOS and iPadOS 18 releases with Apple's build numbers; every model of the catalogue runs them all.
IOS_RELEASES: tuple[tuple[str, str], ...] = (
    ("18.0", "22A3354"),
    ("18.0.1", "22A3370"),
    ("18.1", "22B83"),
    ("18.1.1", "22B91"),
    ("18.2", "22C152"),
    ("18.2.1", "22C161"),
    ("18.3", "22D63"),
    ("18.3.1", "22D72"),
    ("18.3.2", "22D82"),
    ("18.4", "22E240"),
    ("18.4.1", "22E252"),
    ("18.5", "22F76"),
    ("18.6", "22G86"),
    ("18.6.2", "22G100"),
)
MACOS_RELEASES: tuple[tuple[str, str], ...] = (
    ("15.0", "24A335"),
    ("15.1", "24B83"),
    ("15.2", "24C101"),
    ("15.3", "24D60"),
    ("15.4", "24E248"),
    ("15.5", "24F74"),
    ("15.6", "24G84"),
)


@dataclass(frozen=True)
class DeviceFacts:
    """A device's factory facts, as ``GET /factory/devices/{serial}`` serves them."""

    serial_number: str
    udid: str
    product: str
    os_version: str
    build_version: str
    imei: str | None
    meid: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "serial_number": self.serial_number,
            "udid": self.udid,
            "product": self.product,
            "os_version": self.os_version,
            "build_version": self.build_version,
            "imei": self.imei,
            "meid": self.meid,
        }


def device_facts(device: SimDevice) -> DeviceFacts:
    """The facts of ``device``: the same for the same row, whenever and wherever they are asked for."""
    line = product_line(device.model, device.device_family)
    cellular = is_cellular(device)
    imei, meid = _cellular_identifiers(device) if cellular else (None, None)
    product = line.cellular_product if cellular and line.cellular_product else line.wifi_product
    releases = MACOS_RELEASES if device.device_family == "Mac" else IOS_RELEASES
    os_version, build_version = releases[_digest_int(device.serial_number, "os") % len(releases)]
    return DeviceFacts(
        serial_number=device.serial_number,
        udid=udid(device.serial_number, chip_id=line.chip_id),
        product=product,
        os_version=os_version,
        build_version=build_version,
        imei=imei,
        meid=meid,
    )


def product_line(model: str, family: str) -> ProductLine:
    """The catalogue's line for ``model``; an unknown name gets its family's default (an iPhone's otherwise)."""
    return PRODUCT_LINES.get(model) or PRODUCT_LINES[_FAMILY_DEFAULT.get(family, "iPhone 16")]


def is_cellular(device: SimDevice) -> bool:
    """iPhones always are; an iPad (or another device) is when the portal lists IMEIs for it."""
    return device.device_family == "iPhone" or bool(_first((device.extra or {}).get("imei")))


def udid(serial_number: str, *, chip_id: int) -> str:
    """The UDID of the device with ``serial_number`` on chip ``chip_id`` (see the module docstring)."""
    if chip_id < _NEW_UDID_SINCE_CHIP:
        return hashlib.sha1(f"udid:{serial_number}".encode(), usedforsecurity=False).hexdigest()
    # Real ECIDs are 52-64 bits and print with leading zeros; keep 52 so the form is "00" + 14 hex digits.
    ecid = _digest_int(serial_number, "ecid") % (1 << 52)
    return f"{chip_id:08X}-{ecid:016X}"


def luhn_check_digit(digits: str) -> str:
    """The digit that makes ``digits`` + it pass the Luhn check (as an IMEI's 15th digit does)."""
    values = [int(char) for char in digits]
    total = sum(_LUHN_DOUBLED[digit] for digit in values[-1::-2]) + sum(values[-2::-2])
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_check_digit(number[:-1]) == number[-1]


def _cellular_identifiers(device: SimDevice) -> tuple[str, str]:
    """The portal's first IMEI and MEID when it lists them and they are well formed; else ones from the serial."""
    extra = device.extra or {}
    imei = _first(extra.get("imei"))
    if imei is None or len(imei) != 15 or not luhn_valid(imei):
        body = f"35{_digest_int(device.serial_number, 'imei') % 10**12:012d}"
        imei = body + luhn_check_digit(body)
    meid = _first(extra.get("meid"))
    if meid is None or len(meid) != 14:
        meid = imei[:14]  # a CDMA-capable phone's MEID is its IMEI without the check digit
    return imei, meid


def _first(values: object) -> str | None:
    if isinstance(values, list) and values and isinstance(values[0], str):
        return values[0]
    return None


def _digest_int(serial_number: str, purpose: str) -> int:
    digest = hashlib.sha256(f"{purpose}:{serial_number}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
