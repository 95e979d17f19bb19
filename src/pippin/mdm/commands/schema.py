"""How Pippin describes an MDM command's keys, and the check of a Command dict against that description.

Apple describes every command in its device-management schemas (``mdm/commands/*.yaml``: each key's type,
presence, allowed values, the iOS version that introduced it, supervision). Pippin writes what it needs of them in
its own terms, for iOS and iPadOS only; a test holds the two side by side (``tests/mdm/test_command_schemas.py``).
Apple gives no string lengths for command keys: the bounds here are Pippin's, so that one command cannot fill the
queue (every row is stored per device) nor carry text an XML plist cannot hold.

Access rights are not checked: Pippin's enrollment profile grants every right (``ALL_ACCESS_RIGHTS``).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
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
_INT64 = 2**63
#: Characters XML 1.0 cannot carry: a plist holding one is refused by the device (or cannot be written at all).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
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


def _reject_type(where: str, kind: str, value: object) -> CommandRejected:
    return CommandRejected(f"{where} must be {kind}, not {type(value).__name__}.")


def _data(value: object, where: str) -> bytes:
    """Data as bytes; base64 text is taken too, for callers that speak JSON."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif isinstance(value, str):
        if len(value) > MAX_DATA_BYTES * 4 // 3 + 4:
            raise CommandRejected(f"{where} is larger than Pippin sends ({MAX_DATA_BYTES} bytes).")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise CommandRejected(f"{where} must be data: bytes, or base64 text.") from None
    else:
        raise _reject_type(where, "data (bytes, or base64 text)", value)
    if len(raw) > MAX_DATA_BYTES:
        raise CommandRejected(f"{where} is larger than Pippin sends ({MAX_DATA_BYTES} bytes).")
    return raw


def _string(value: object, key: Key, where: str) -> str:
    if not isinstance(value, str):
        raise _reject_type(where, "a string", value)
    if len(value) > key.max_chars:
        raise CommandRejected(f"{where} is longer than {key.max_chars} characters.")
    if _NOT_XML.search(value):
        raise CommandRejected(f"{where} holds control characters a plist cannot carry.")
    return value


def _integer(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _reject_type(where, "an integer", value)
    if not -_INT64 <= value < _INT64:
        raise CommandRejected(f"{where} does not fit a 64-bit integer.")
    return value


def _free_form(value: object, where: str, depth: int = 0) -> object:
    """Any plist value (Apple's ``<any>``), copied, within Pippin's bounds."""
    if depth > MAX_NESTING:
        raise CommandRejected(f"{where} nests deeper than {MAX_NESTING} levels.")
    if isinstance(value, bool | datetime):
        return value
    if isinstance(value, int):
        return _integer(value, where)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CommandRejected(f"{where} must be a finite number.")
        return value
    if isinstance(value, str):
        return _string(value, Key(where, Kind.string), where)
    if isinstance(value, bytes | bytearray):
        return _data(value, where)
    if isinstance(value, list | tuple):
        if len(value) > MAX_ARRAY_ITEMS:
            raise CommandRejected(f"{where} has more than {MAX_ARRAY_ITEMS} elements.")
        return [_free_form(item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        if len(value) > MAX_ARRAY_ITEMS:
            raise CommandRejected(f"{where} has more than {MAX_ARRAY_ITEMS} keys.")
        copied: dict[str, object] = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise CommandRejected(f"{where} has a key that is not a string.")
            label = _string(name, Key(name, Kind.string, max_chars=256), f"a key of {where}")
            copied[label] = _free_form(item, f"{where}.{label}", depth + 1)
        return copied
    raise _reject_type(where, "a plist value", value)


def check_value(value: object, key: Key, where: str, device: DeviceFacts | None) -> object:
    """``value`` checked against ``key`` (recursively), as the command will carry it."""
    checked: object
    if key.kind is Kind.string:
        checked = _string(value, key, where)
        if key.choices:
            choice = next((c for c in key.choices if c.name == checked), None)
            if choice is None:
                raise CommandRejected(f"{where} {checked[:64]!r} is not one Apple defines.")
            check_available(choice.available, f"{where} {checked!r}", device)
    elif key.kind is Kind.integer:
        checked = _integer(value, where)
    elif key.kind is Kind.real:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _reject_type(where, "a finite number", value)
        checked = value
    elif key.kind is Kind.boolean:
        if not isinstance(value, bool):
            raise _reject_type(where, "true or false", value)
        checked = value
    elif key.kind is Kind.data:
        checked = _data(value, where)
    elif key.kind is Kind.date:
        if not isinstance(value, datetime):
            raise _reject_type(where, "a date", value)
        checked = value
    elif key.kind is Kind.array:
        checked = _array(value, key, where, device)
    elif key.kind is Kind.dictionary:
        checked = _dictionary(value, key, where, device)
    else:
        checked = _free_form(value, where)
    if key.allowed and checked not in key.allowed:
        choices = ", ".join(repr(v) for v in key.allowed)
        raise CommandRejected(f"{where} must be one of {choices}.")
    return checked


def _array(value: object, key: Key, where: str, device: DeviceFacts | None) -> list[object]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise _reject_type(where, "an array", value)
    if len(value) > MAX_ARRAY_ITEMS:
        raise CommandRejected(f"{where} has more than {MAX_ARRAY_ITEMS} elements.")
    if key.items is None:
        return [_free_form(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return [check_value(item, key.items, f"{where}[{i}]", device) for i, item in enumerate(value)]


def _dictionary(value: object, key: Key, where: str, device: DeviceFacts | None) -> dict[str, object]:
    if not isinstance(value, Mapping):
        raise _reject_type(where, "a dictionary", value)
    if key.free_form:
        copied = _free_form(value, where)
        assert isinstance(copied, dict)
        return copied
    keys = key.keys
    if key.choices:
        item = value.get("Item")
        variant = next((c for c in key.choices if c.name == item), None)
        if variant is None:
            shown = repr(item)[:64] if isinstance(item, str) else "missing"
            raise CommandRejected(f"{where}.Item ({shown}) is not a settings item Apple defines.")
        where = f"{where} ({variant.name})"
        check_available(variant.available, where, device)
        keys = variant.keys
    return check_keys(value, keys, where, device)


def check_keys(
    given: Mapping[object, object], keys: tuple[Key, ...], where: str, device: DeviceFacts | None
) -> dict[str, object]:
    """``given`` checked key by key against ``keys``: none unknown, none required missing, each of its type."""
    known = {key.name: key for key in keys}
    checked: dict[str, object] = {}
    for name, value in given.items():
        if not isinstance(name, str):
            raise CommandRejected(f"{where} has a key that is not a string.")
        key = known.get(name)
        if key is None:
            raise CommandRejected(f"{where} has the key {name[:64]!r}, which Apple does not define there.")
        label = f"{where}.{name}"
        check_available(key.available, label, device)
        checked[name] = check_value(value, key, label, device)
    missing = [key.name for key in keys if key.required and key.name not in given]
    if missing:
        raise CommandRejected(f"{where} lacks the required {', '.join(missing)}.")
    return checked
