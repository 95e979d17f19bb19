"""The check of a Command dict's values against Pippin's description of its keys (``schema.py``), recursively.

Each value is copied as the command will carry it (data given as base64 text becomes bytes), within Pippin's
bounds, and refused with the path of the key (``EraseDevice.ReturnToService.Enabled``) and the reason.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from datetime import datetime

from pippin.mdm.commands.schema import (
    MAX_ARRAY_ITEMS,
    MAX_DATA_BYTES,
    MAX_NESTING,
    CommandRejected,
    DeviceFacts,
    Key,
    Kind,
    check_available,
)

_INT64 = 2**63
#: Characters XML 1.0 cannot carry: a plist holding one is refused by the device (or cannot be written at all).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


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
