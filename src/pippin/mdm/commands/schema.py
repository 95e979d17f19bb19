"""How Pippin describes an MDM command and its keys, and where on iOS each exists.

Apple describes every command in its device-management schemas (``mdm/commands/*.yaml``: each key's type,
presence, allowed values, the iOS version that introduced it, supervision). Pippin writes what it needs of them in
its own terms, for iOS and iPadOS only; a test holds the two side by side (``tests/mdm/test_command_schemas.py``).
Apple gives no string lengths for command keys: the bounds here are Pippin's, so that one command cannot fill the
queue (every row is stored per device). ``values.py`` checks a command's values against the description.

Access rights are not checked: Pippin's enrollment profile grants every right (``ALL_ACCESS_RIGHTS``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from pippin.errors import InvalidInput

#: Pippin's bound for any string value (Apple's schemas give none for commands).
MAX_STRING_CHARS = 4096
#: Pippin's bound for the elements of an array (the longest real one, Queries, has about 90 names).
MAX_ARRAY_ITEMS = 1000
#: Pippin's bound for a data value: a profile, an unlock token, a wallpaper image.
MAX_DATA_BYTES = 1024 * 1024
#: How deep free-form values (an app's managed configuration) may nest.
MAX_NESTING = 16
_VERSION = re.compile(r"\d{1,4}(\.\d{1,4}){0,3}")
_IOS_PRODUCTS = ("iPhone", "iPad", "iPod")


class CommandRejected(InvalidInput):
    """A command's request type or one of its keys is not what Apple's protocol allows for this device."""

    code = "command_rejected"


class Kind(StrEnum):
    """A value's type, as Apple's schemas name them (``<string>``, ``<integer>``, ...)."""

    string = "string"
    integer = "integer"
    real = "real"
    boolean = "boolean"
    data = "data"
    date = "date"
    array = "array"
    dictionary = "dictionary"
    any = "any"


@dataclass(frozen=True)
class Availability:
    """Where an iOS command, key or value exists: Apple's ``supportedOS.iOS`` for it, in Pippin's terms."""

    since: str | None = None  # the iOS version that introduced it, when later than what holds it
    removed: str | None = None  # the iOS version from which the device refuses it
    supervised: bool = False  # only on supervised devices
    requires_ade: bool = False  # only on devices enrolled through Automated Device Enrollment
    shared_ipad_only: bool = False  # only on a Shared iPad
    lost_mode: bool = False  # only while the device is in lost mode
    on_ios: bool = True  # False: Apple defines it for other platforms only
    device_channel: bool = True  # False: for the user channel only, which Pippin does not manage


ON_ALL_IOS = Availability()


@dataclass(frozen=True)
class Key:
    """One key of a command (or of a dictionary inside it), or one allowed value of a string."""

    name: str
    kind: Kind
    required: bool = False
    available: Availability = ON_ALL_IOS
    allowed: tuple[object, ...] = ()  # Apple's rangelist
    items: Key | None = None  # an array's element
    keys: tuple[Key, ...] = ()  # a dictionary's keys
    free_form: bool = False  # a dictionary of any keys and values (an app's managed configuration)
    choices: tuple[Key, ...] = ()  # a string: the names it may take; a dictionary: its variants, by ``Item``
    max_chars: int = MAX_STRING_CHARS


@dataclass(frozen=True)
class DeviceFacts:
    """What Pippin knows of the device a command is for; None where it does not know (nothing is refused then)."""

    os_version: str | None = None
    supervised: bool | None = None
    product_name: str | None = None
    enrolled_through_ade: bool | None = None
    lost_mode_enabled: bool | None = None


@dataclass(frozen=True)
class CommandSpec:
    """One request type Apple defines for iOS and iPadOS, as Pippin checks it."""

    request_type: str
    available: Availability = ON_ALL_IOS
    keys: tuple[Key, ...] = ()
    destructive: bool = False  # it takes the device or its data away from its user: confirmation and audit
    # A check beyond types and availability (a profile's content, keys that need each other).
    extra_check: Callable[[dict[str, object], DeviceFacts | None], None] | None = None


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """``"17.4.1"`` as ``(17, 4, 1)``; None for anything that is not a dotted version."""
    if text is None or not _VERSION.fullmatch(text):
        return None
    return tuple(int(part) for part in text.split("."))


def _older(version: tuple[int, ...], than: str) -> bool:
    other = parse_version(than)
    assert other is not None, than
    width = max(len(version), len(other))
    return version + (0,) * (width - len(version)) < other + (0,) * (width - len(other))


def check_available(available: Availability, where: str, device: DeviceFacts | None) -> None:
    """Refuse what ``where`` cannot be on iOS, or on this device where its facts are known."""
    if not available.on_ios:
        raise CommandRejected(
            f"{where} is not available on iOS or iPadOS.", hint="Apple defines it for other platforms only."
        )
    if not available.device_channel:
        raise CommandRejected(f"{where} exists only on the user channel, which Pippin does not manage.")
    if device is None:
        return
    version = parse_version(device.os_version)
    if version is not None and available.since and _older(version, available.since):
        raise CommandRejected(f"{where} needs iOS {available.since} or later; the device runs {device.os_version}.")
    if version is not None and available.removed and not _older(version, available.removed):
        raise CommandRejected(f"{where} was removed in iOS {available.removed}; the device runs {device.os_version}.")
    if available.supervised and device.supervised is False:
        raise CommandRejected(f"{where} needs a supervised device; this one is not supervised.")
    if available.requires_ade and device.enrolled_through_ade is False:
        raise CommandRejected(f"{where} needs a device enrolled through Automated Device Enrollment.")
    if available.lost_mode and device.lost_mode_enabled is False:
        raise CommandRejected(f"{where} works only while the device is in lost mode; it is not.")
    if available.shared_ipad_only and device.product_name and not device.product_name.startswith("iPad"):
        raise CommandRejected(f"{where} applies to a Shared iPad only; the device is a {device.product_name}.")


def check_device(device: DeviceFacts | None) -> None:
    """Refuse a device that is not an iPhone or iPad: Pippin describes Apple's commands for iOS and iPadOS only."""
    if device is not None and device.product_name and not device.product_name.startswith(_IOS_PRODUCTS):
        raise CommandRejected(
            f"The device is a {device.product_name[:40]!r}, not an iPhone or iPad.",
            hint="Pippin's commands are described for iOS and iPadOS only.",
        )
