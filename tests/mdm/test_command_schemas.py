"""Every command Pippin builds, and Pippin's description of each command, against Apple's YAML schemas
(``../shared/apple-device-management/mdm/commands``, iOS 18.1) plus the later changes the 2026 notes list."""

from __future__ import annotations

from typing import Any

import pytest

from pippin.mdm.command_catalog import RAW, build_command, raw_request_types, request_types
from pippin.mdm.commands.device_commands import MODELLED
from pippin.mdm.commands.other_commands import MACOS_ONLY, OTHERS
from pippin.mdm.commands.schema import Availability, CommandSpec, Key, Kind, parse_version
from tests.apple_schemas import PLIST_TYPES, apple_commands
from tests.mdm.command_samples import MODELLED_SAMPLES, RAW_SAMPLES

#: What Apple changed after the 18.1 schemas (reference apple-mdm-updates-2026.md, section 3 and correction 11):
#: keys added, with the iOS version, and what iOS 27 removed.
ADDED_LATER = {
    "EraseDevice.ReturnToService.BootstrapToken": "26.0",
    "EraseDevice.ReturnToService.ShouldRetryEnrollment": "27.0",
}
REMOVED_LATER = {
    "AvailableOSUpdates": "27.0",
    "ScheduleOSUpdate": "27.0",
    "OSUpdateStatus": "27.0",
    "DeviceInformation.Queries.SoftwareUpdateDeviceID": "27.0",
    "DeviceInformation.Queries.SoftwareUpdateSettings": "27.0",
    "Settings.Settings.SoftwareUpdateSettings": "27.0",
}


def _ios(entry: dict[str, Any]) -> dict[str, Any]:
    ios: dict[str, Any] = (entry.get("supportedOS") or {}).get("iOS") or {}
    return ios


def _on_ios(entry: dict[str, Any]) -> bool:
    return _ios(entry).get("introduced") != "n/a"


# --- the commands Pippin builds, walked against Apple's keys --------------------------------------------------


def _conforms(value: Any, key: dict[str, Any], where: str) -> None:
    assert _on_ios(key), f"{where} is not available on iOS in Apple's schema"
    expected = PLIST_TYPES.get(key["type"])
    if expected is not None:
        assert isinstance(value, expected), f"{where} is {type(value).__name__}, Apple's schema says {key['type']}"
    if key["type"] in ("<integer>", "<real>"):
        assert not isinstance(value, bool), where
    if "rangelist" in key and key["type"] != "<array>":
        assert value in key["rangelist"], f"{where} {value!r} is not in Apple's {key['rangelist']}"
    subkeys = key.get("subkeys") or []
    if key["type"] == "<dictionary>" and subkeys and subkeys[0]["key"] != "ANY":
        conforms(value, subkeys, where)
    if key["type"] == "<array>" and subkeys:
        for index, item in enumerate(value):
            _conforms_item(item, subkeys, f"{where}[{index}]")


def _conforms_item(item: Any, subkeys: list[dict[str, Any]], where: str) -> None:
    if len(subkeys) > 1:  # Settings: a dictionary per item kind, chosen by its Item
        variant = next((s for s in subkeys if s["key"] == item.get("Item")), None)
        assert variant is not None, f"{where} is an item Apple does not define: {item.get('Item')!r}"
        _conforms(item, variant, f"{where} ({variant['key']})")
        return
    element = subkeys[0]
    _conforms(item, {**element, "subkeys": None} if element["type"] == "<string>" else element, where)
    names = element.get("subkeys") if element["type"] == "<string>" else None
    if names:  # DeviceInformation: the query names Apple lists
        named = next((n for n in names if n["key"] == item), None)
        assert named is not None and _on_ios(named), f"{where} {item!r} is not a query Apple defines for iOS"


def conforms(given: dict[str, Any], keys: list[dict[str, Any]], where: str) -> None:
    known = {key["key"]: key for key in keys}
    for name, value in given.items():
        if f"{where}.{name}" in ADDED_LATER:
            continue
        assert name in known, f"{where}.{name} is not a key Apple's schema defines"
        _conforms(value, known[name], f"{where}.{name}")
    for name, key in known.items():
        if key.get("presence") == "required" and _on_ios(key):
            assert name in given, f"{where} lacks Apple's required {name}"


def _check_against_apple(command: dict[str, Any]) -> None:
    request_type = command["RequestType"]
    schema = apple_commands().get(request_type)
    assert schema is not None, f"{request_type} is not a request type in Apple's schemas"
    assert _on_ios(schema["payload"]), f"{request_type} is not available on iOS"
    conforms({k: v for k, v in command.items() if k != "RequestType"}, schema.get("payloadkeys") or [], request_type)


@pytest.mark.parametrize(("request_type", "payload"), MODELLED_SAMPLES, ids=lambda v: v if isinstance(v, str) else "")
def test_each_modelled_command_is_what_apples_schema_describes(request_type: str, payload: dict[str, Any]) -> None:
    queued = build_command(request_type, payload)
    assert queued.request_type == request_type == queued.command["RequestType"]
    _check_against_apple(queued.command)


@pytest.mark.parametrize("command", RAW_SAMPLES, ids=lambda c: c["RequestType"])
def test_each_raw_command_is_what_apples_schema_describes(command: dict[str, Any]) -> None:
    queued = build_command(RAW, command)
    _check_against_apple(queued.command)


def test_the_samples_cover_every_command_pippin_builds() -> None:
    built = {request_type for request_type, _ in MODELLED_SAMPLES} | {c["RequestType"] for c in RAW_SAMPLES}
    assert set(request_types()) - {RAW} <= built
    assert set(raw_request_types()) <= built


# --- Pippin's description of each command, against Apple's ---------------------------------------------------


def _effective(since: str | None, inherited: str) -> str:
    return since or inherited


def _compare_availability(mine: Availability, apple: dict[str, Any], where: str, inherited: dict[str, Any]) -> dict:
    """Mine against Apple's for one entry; the effective values (own or inherited) for its children."""
    ios = _ios(apple)
    if not _on_ios(apple):
        assert not mine.on_ios, f"{where} is macOS-only in Apple's schema; Pippin's description has it on iOS"
        return inherited
    assert mine.on_ios, f"{where} is on iOS in Apple's schema"
    since = ios.get("introduced") or inherited["since"]
    mine_since = _effective(mine.since, inherited["mine_since"])
    assert parse_version(mine_since) == parse_version(since), f"{where}: Pippin says iOS {mine_since}, Apple {since}"
    supervised = bool(ios.get("supervised", inherited["supervised"]))
    assert (mine.supervised or inherited["supervised"]) == supervised, f"{where}: supervision differs"
    shared = (ios.get("sharedipad") or {}).get("mode") == "required" or inherited["shared"]
    assert (mine.shared_ipad_only or inherited["shared"]) == shared, f"{where}: Shared iPad only differs"
    removed = REMOVED_LATER.get(where) or ios.get("removed")
    assert mine.removed == removed, f"{where}: Pippin says removed in {mine.removed}, Apple {removed}"
    return {"since": since, "mine_since": mine_since, "supervised": supervised, "shared": shared}


def _compare_keys(mine: tuple[Key, ...], apples: list[dict[str, Any]], where: str, inherited: dict) -> None:
    by_name = {key.name: key for key in mine}
    apple_names = {key["key"] for key in apples}
    later = {name.rsplit(".", 1)[1] for name in ADDED_LATER if name.rsplit(".", 1)[0] == where}
    assert set(by_name) - later == apple_names, f"{where}: keys differ from Apple's"
    for apple in apples:
        _compare_key(by_name[apple["key"]], apple, f"{where}.{apple['key']}", inherited)


def _compare_key(mine: Key, apple: dict[str, Any], where: str, inherited: dict) -> None:
    assert f"<{mine.kind.value}>" == apple["type"], f"{where}: Pippin says {mine.kind}, Apple {apple['type']}"
    if not _on_ios(apple):
        assert not mine.available.on_ios, f"{where} is macOS-only in Apple's schema"
        return
    assert mine.required == (apple.get("presence") == "required"), f"{where}: presence differs"
    assert set(mine.allowed) == set(apple.get("rangelist") or []), f"{where}: allowed values differ"
    effective = _compare_availability(mine.available, apple, where, inherited)
    subkeys = apple.get("subkeys") or []
    if mine.kind is Kind.dictionary:
        if mine.free_form:
            assert [s["key"] for s in subkeys] == ["ANY"], f"{where}: Apple describes its keys"
        elif subkeys or mine.keys:
            _compare_keys(mine.keys, subkeys, where, effective)
    elif mine.kind is Kind.array and subkeys:
        assert mine.items is not None, f"{where}: Apple describes its elements"
        if mine.items.choices and mine.items.kind is Kind.dictionary:  # Settings' items
            _compare_keys(mine.items.choices, subkeys, where, effective)
        elif mine.items.choices:  # DeviceInformation's query names
            _compare_keys(mine.items.choices, subkeys[0]["subkeys"], where, effective)
        else:
            _compare_key(mine.items, subkeys[0], f"{where}[]", effective)


@pytest.mark.parametrize("spec", [*MODELLED, *OTHERS], ids=lambda spec: spec.request_type)
def test_pippins_description_of_each_command_is_apples(spec: CommandSpec) -> None:
    schema = apple_commands().get(spec.request_type)
    assert schema is not None, f"{spec.request_type} is not in Apple's schemas"
    payload = schema["payload"]
    inherited = {"since": "4.0", "mine_since": "4.0", "supervised": False, "shared": False}
    effective = _compare_availability(spec.available, payload, spec.request_type, inherited)
    assert spec.available.requires_ade == bool(_ios(payload).get("requiresdep")), "requires ADE differs"
    if not spec.available.device_channel:
        assert (_ios(payload).get("sharedipad") or {}).get("devicechannel") is False
    _compare_keys(spec.keys, schema.get("payloadkeys") or [], spec.request_type, effective)


def test_every_request_type_apple_defines_is_described_or_known_not_on_ios() -> None:
    apples = apple_commands()
    described = {spec.request_type for spec in [*MODELLED, *OTHERS]}
    not_on_ios = {name for name, schema in apples.items() if not _on_ios(schema["payload"])}
    assert described == set(apples) - not_on_ios
    assert set(MACOS_ONLY) == not_on_ios
