"""Building commands from an admin's parameters: what is accepted, and the clear refusal of everything else."""

from __future__ import annotations

import base64
import plistlib
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pippin.errors import InvalidInput
from pippin.mdm.command_catalog import (
    MAX_COMMAND_BYTES,
    RAW,
    CommandRejected,
    DeviceFacts,
    build_command,
    raw_request_types,
    request_types,
)
from pippin.mdm.commands.device_queries import INVENTORY_QUERIES
from pippin.mdm.commands.schema import MAX_DATA_BYTES, MAX_STRING_CHARS
from tests.mdm.command_samples import MODELLED_SAMPLES, mdm_profile, profile, profile_plist, signed

IPHONE = DeviceFacts(os_version="18.1", supervised=True, product_name="iPhone17,1", enrolled_through_ade=True)


def rejected(request_type: str, payload: Any, device: DeviceFacts | None = None) -> str:
    with pytest.raises(CommandRejected) as caught:
        build_command(request_type, payload, device=device)
    assert isinstance(caught.value, InvalidInput)
    return caught.value.message


# --- what is built --------------------------------------------------------------------------------------------


def test_request_types_are_the_modelled_commands_then_raw() -> None:
    types = request_types()
    assert types[-1] == RAW and "EraseDevice" in types and "InstallApplication" not in types
    assert "InstallApplication" in raw_request_types() and "UserConfigured" not in raw_request_types()


def test_device_information_asks_for_what_the_inventory_reads_by_default() -> None:
    queued = build_command("DeviceInformation", {}, device=IPHONE)
    assert queued.command == {"RequestType": "DeviceInformation", "Queries": list(INVENTORY_QUERIES)}
    assert not queued.destructive
    for name in ("OSVersion", "BuildVersion", "WiFiMAC", "IsActivationLockEnabled", "IsDeviceLocatorServiceEnabled"):
        assert name in queued.command["Queries"]  # type: ignore[operator]


def test_device_information_takes_the_callers_queries_each_checked() -> None:
    assert build_command("DeviceInformation", {"Queries": ["UDID"]}).command["Queries"] == ["UDID"]
    assert "'Nonsense' is not one Apple defines" in rejected("DeviceInformation", {"Queries": ["UDID", "Nonsense"]})
    assert "EthernetMAC' is not available on iOS" in rejected("DeviceInformation", {"Queries": ["EthernetMAC"]})
    assert "names UDID more than once" in rejected("DeviceInformation", {"Queries": ["UDID", "UDID"]})
    assert "is empty" in rejected("DeviceInformation", {"Queries": []})
    old = DeviceFacts(os_version="16.3")
    assert "ModelNumber' needs iOS 16.4" in rejected("DeviceInformation", {"Queries": ["ModelNumber"]}, old)
    gone = DeviceFacts(os_version="27.0")
    assert "removed in iOS 27.0" in rejected("DeviceInformation", {"Queries": ["SoftwareUpdateDeviceID"]}, gone)
    assert "Shared iPad only" in rejected("DeviceInformation", {"Queries": ["QuotaSize"]}, IPHONE)


@pytest.mark.parametrize(
    ("request_type", "destructive"),
    [("EraseDevice", True), ("DeviceLock", True), ("ClearPasscode", True), ("EnableLostMode", True),
     ("DisableLostMode", False), ("RestartDevice", False), ("InstallProfile", False), ("DeviceInformation", False)],
)  # fmt: skip
def test_destructive_commands_say_so(request_type: str, destructive: bool) -> None:
    payload = next(p for t, p in MODELLED_SAMPLES if t == request_type)
    assert build_command(request_type, payload).destructive is destructive


def test_the_command_is_apples_dict_and_plists() -> None:
    queued = build_command("DeviceLock", {"Message": "Return to IT", "PhoneNumber": "+1 555 0100"}, device=IPHONE)
    assert queued.request_type == "DeviceLock"
    body = plistlib.dumps({"CommandUUID": "x", "Command": queued.command}, fmt=plistlib.FMT_XML)
    assert plistlib.loads(body)["Command"] == {"RequestType": "DeviceLock", "Message": "Return to IT",
                                               "PhoneNumber": "+1 555 0100"}  # fmt: skip


def test_data_takes_bytes_or_base64_text_and_carries_bytes() -> None:
    token = b"\x00\x01unlock-token"
    as_text = build_command("ClearPasscode", {"UnlockToken": base64.b64encode(token).decode()})
    assert (
        as_text.command["UnlockToken"]
        == token
        == build_command("ClearPasscode", {"UnlockToken": token}).command["UnlockToken"]
    )
    assert "must be data: bytes, or base64 text" in rejected("ClearPasscode", {"UnlockToken": "not base64!"})
    assert "ClearPasscode lacks the required UnlockToken" in rejected("ClearPasscode", {})
    assert "ClearPasscode.UnlockToken is empty" in rejected("ClearPasscode", {"UnlockToken": b""})


def test_a_matching_request_type_in_the_parameters_is_taken_another_is_refused() -> None:
    assert build_command("SecurityInfo", {"RequestType": "SecurityInfo"}).command == {"RequestType": "SecurityInfo"}
    assert "name another RequestType" in rejected("SecurityInfo", {"RequestType": "EraseDevice"})


def test_raw_sends_any_ios_command_checked_against_its_keys() -> None:
    command = {"RequestType": "RefreshCellularPlans", "eSIMServerURL": "https://esim.example.com"}
    assert build_command(RAW, command).command == command
    assert "lacks the required eSIMServerURL" in rejected(RAW, {"RequestType": "RefreshCellularPlans"})
    assert "'Foo' is not a command Apple defines" in rejected(RAW, {"RequestType": "Foo"})
    assert "no RequestType" in rejected(RAW, {"eSIMServerURL": "x"})
    assert "no RequestType" in rejected(RAW, {"RequestType": 7})
    assert "SetFirmwarePassword is not available on iOS" in rejected(RAW, {"RequestType": "SetFirmwarePassword"})
    assert "only on the user channel" in rejected(RAW, {"RequestType": "UserConfigured"})
    assert "Pippin does not model InstallApplication" in rejected("InstallApplication", {})
    assert "'Wipe' is not a command Apple defines" in rejected("Wipe", {})
    # A raw modelled command gets the modelled command's checks.
    assert build_command(RAW, {"RequestType": "EraseDevice"}).destructive
    assert "not a profile" in rejected(RAW, {"RequestType": "InstallProfile", "Payload": b"junk"})


# --- the device's facts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_type",
    ["ShutDownDevice", "RestartDevice", "EnableLostMode", "DisableLostMode", "DeviceLocation", "PlayLostModeSound",
     "ActivationLockBypassCode", "DeviceConfigured"],
)  # fmt: skip
def test_supervised_only_commands_are_refused_for_an_unsupervised_device(request_type: str) -> None:
    payload = next(p for t, p in MODELLED_SAMPLES if t == request_type)
    unsupervised = DeviceFacts(os_version="18.1", supervised=False, product_name="iPhone17,1")
    assert f"{request_type} needs a supervised device" in rejected(request_type, payload, unsupervised)
    build_command(request_type, payload, device=DeviceFacts(os_version="18.1", supervised=None))  # unknown: sent


def test_too_old_an_ios_is_refused_for_commands_and_keys() -> None:
    assert "ShutDownDevice needs iOS 10.3 or later; the device runs 9.3" in rejected(
        "ShutDownDevice", {}, DeviceFacts(os_version="9.3", supervised=True)
    )
    rts = {"ReturnToService": {"Enabled": True, "MDMProfileData": mdm_profile()}}
    assert "EraseDevice.ReturnToService needs iOS 17.0" in rejected("EraseDevice", rts, DeviceFacts(os_version="16.7"))
    build_command("EraseDevice", rts, device=DeviceFacts(os_version="17.0"))
    later = {"ReturnToService": {"Enabled": True, "ShouldRetryEnrollment": True}}
    assert "ShouldRetryEnrollment needs iOS 27.0" in rejected("EraseDevice", later, IPHONE)
    assert "ScheduleOSUpdate was removed in iOS 27.0" in rejected(
        RAW,
        {"RequestType": "ScheduleOSUpdate", "Updates": [{"InstallAction": "Default"}]},
        DeviceFacts(os_version="27.1", supervised=True),
    )
    build_command("ShutDownDevice", {}, device=DeviceFacts(os_version="not a version", supervised=True))


def test_commands_for_lost_mode_wait_for_lost_mode() -> None:
    found = DeviceFacts(os_version="18.1", supervised=True, lost_mode_enabled=False)
    assert "only while the device is in lost mode" in rejected("DeviceLocation", {}, found)
    assert "only while the device is in lost mode" in rejected("PlayLostModeSound", {}, found)
    build_command("EnableLostMode", {"Message": "Lost"}, device=found)
    build_command("DeviceLocation", {}, device=DeviceFacts(supervised=True, lost_mode_enabled=True))


def test_lost_mode_needs_a_message_or_a_phone_number() -> None:
    assert "needs a Message or a PhoneNumber" in rejected("EnableLostMode", {"Footnote": "only this"})
    build_command("EnableLostMode", {"PhoneNumber": "+1 555 0100"})


def test_device_configured_needs_an_ade_enrollment() -> None:
    web = DeviceFacts(os_version="18.1", supervised=True, enrolled_through_ade=False)
    assert "needs a device enrolled through Automated Device Enrollment" in rejected("DeviceConfigured", {}, web)


def test_a_device_that_is_not_an_iphone_or_ipad_is_refused() -> None:
    assert "not an iPhone or iPad" in rejected("SecurityInfo", {}, DeviceFacts(product_name="Mac14,2"))
    build_command("SecurityInfo", {}, device=DeviceFacts(product_name="iPad13,1"))


def test_pin_is_refused_on_ios_where_apple_allows_it_only_on_macos() -> None:
    assert "DeviceLock.PIN is not available on iOS or iPadOS" in rejected("DeviceLock", {"PIN": "123456"})
    assert "EraseDevice.PIN is not available on iOS or iPadOS" in rejected("EraseDevice", {"PIN": "123456"})
    assert "ObliterationBehavior is not available" in rejected("EraseDevice", {"ObliterationBehavior": "Always"})


def test_return_to_service_needs_the_enrollment_profile_where_the_device_cannot_fetch_it() -> None:
    bare = {"ReturnToService": {"Enabled": True}}
    build_command("EraseDevice", bare, device=IPHONE)
    for device in (DeviceFacts(supervised=False), DeviceFacts(supervised=True, enrolled_through_ade=False)):
        assert "needs MDMProfileData" in rejected("EraseDevice", bare, device)
    assert "ReturnToService lacks the required Enabled" in rejected("EraseDevice", {"ReturnToService": {}})
    wifi_as_mdm = {"ReturnToService": {"Enabled": True, "MDMProfileData": profile()}}
    assert "MDMProfileData is not a profile Pippin sends: it holds no MDM payload" in rejected(
        "EraseDevice", wifi_as_mdm
    )
    mdm_as_wifi = {"ReturnToService": {"Enabled": True, "WiFiProfileData": mdm_profile()}}
    assert "WiFiProfileData is not a profile Pippin sends: it holds an MDM payload" in rejected(
        "EraseDevice", mdm_as_wifi
    )


# --- Settings -------------------------------------------------------------------------------------------------


def test_settings_items_are_each_checked_against_their_kind() -> None:
    def settings(*items: Any) -> dict[str, Any]:
        return {"Settings": list(items)}

    name = {"Item": "DeviceName", "DeviceName": "Front desk"}
    assert build_command("Settings", settings(name), device=IPHONE).command["Settings"] == [name]
    unsupervised = DeviceFacts(os_version="18.1", supervised=False)
    assert "Settings.Settings[0] (DeviceName) needs a supervised device" in rejected(
        "Settings", settings(name), unsupervised
    )
    build_command("Settings", settings({"Item": "DataRoaming", "Enabled": True}), device=unsupervised)
    assert "(DeviceName) lacks the required DeviceName" in rejected("Settings", settings({"Item": "DeviceName"}))
    assert "(DeviceName) has the key 'Enabled'" in rejected("Settings", settings({**name, "Enabled": True}))
    assert "(Wallpaper).Where must be one of 1, 2, 3" in rejected(
        "Settings", settings({"Item": "Wallpaper", "Image": b"i", "Where": 4})
    )
    assert "(TimeZone) needs iOS 14.0" in rejected(
        "Settings", settings({"Item": "TimeZone", "TimeZone": "UTC"}), DeviceFacts(os_version="13.7")
    )
    assert "Item ('HostName') is not available" not in rejected("Settings", settings({"Item": "HostName"}))
    assert "(HostName) is not available on iOS" in rejected("Settings", settings({"Item": "HostName", "HostName": "h"}))
    assert "Item (missing) is not a settings item" in rejected("Settings", settings({"DeviceName": "x"}))
    assert "Settings.Settings[0] must be a dictionary" in rejected("Settings", settings("DeviceName"))
    assert "(SharedDeviceConfiguration) applies to a Shared iPad only" in rejected(
        "Settings", settings({"Item": "SharedDeviceConfiguration", "QuotaSize": 1}), IPHONE
    )
    assert "Settings.Settings is empty" in rejected("Settings", settings())
    assert "Settings lacks the required Settings" in rejected("Settings", {})


# --- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_type", "payload", "message"),
    [
        ("DeviceLock", {"Message": 5}, "DeviceLock.Message must be a string, not int"),
        ("DeviceLock", {"Message": b"bytes"}, "DeviceLock.Message must be a string, not bytes"),
        ("DeviceLock", {"Message": None}, "DeviceLock.Message must be a string, not NoneType"),
        ("EraseDevice", {"PreserveDataPlan": "true"}, "EraseDevice.PreserveDataPlan must be true or false, not str"),
        ("EraseDevice", {"PreserveDataPlan": 1}, "must be true or false, not int"),
        ("EraseDevice", {"ReturnToService": True}, "EraseDevice.ReturnToService must be a dictionary, not bool"),
        ("ProfileList", {"ManagedOnly": [True]}, "must be true or false, not list"),
        ("DeviceInformation", {"Queries": "UDID"}, "DeviceInformation.Queries must be an array, not str"),
        ("DeviceInformation", {"Queries": [7]}, "DeviceInformation.Queries[0] must be a string, not int"),
        ("InstallProfile", {"Payload": 12}, "InstallProfile.Payload must be data (bytes, or base64 text), not int"),
        ("RemoveProfile", {"Identifier": ""}, "RemoveProfile.Identifier is empty"),
        ("RemoveProfile", {}, "RemoveProfile lacks the required Identifier"),
        ("SecurityInfo", {"Verbose": True}, "SecurityInfo has the key 'Verbose', which Apple does not define there"),
        ("SecurityInfo", {1: True}, "has a key that is not a string"),
        ("SecurityInfo", ["not", "a", "dict"], "must be a dictionary"),
        ("DeviceLock", {"Message": "x" * (1024 + 1)}, "DeviceLock.Message is longer than 1024 characters"),
        ("RemoveProfile", {"Identifier": "x" * 5000}, "is longer than 1024 characters"),
        ("DeviceLock", {"Message": "bell\x07"}, "holds control characters a plist cannot carry"),
        ("DeviceLock", {"Message": "nul\x00"}, "holds control characters"),
        (RAW, {"RequestType": "RequestMirroring", "ScanTime": True}, "ScanTime must be an integer, not bool"),
        (RAW, {"RequestType": "RequestMirroring", "ScanTime": 2**64}, "does not fit a 64-bit integer"),
        (RAW, {"RequestType": "RequestMirroring", "Password": "p" * (MAX_STRING_CHARS + 1)}, "is longer than"),
        (RAW, {"RequestType": "InstallMedia", "MediaType": "Movie"}, "MediaType must be one of 'Book'"),
        (
            RAW,
            {"RequestType": "InstallApplication", "Configuration": {"k": float("nan")}},
            "InstallApplication.Configuration.k must be a finite number",
        ),
        (
            RAW,
            {"RequestType": "InstallApplication", "Configuration": {"k": object()}},
            "InstallApplication.Configuration.k must be a plist value, not object",
        ),
        (RAW, {"RequestType": "InstallApplication", "Configuration": {2: "x"}}, "has a key that is not a string"),
        (RAW, {"RequestType": "ValidateApplications", "Identifiers": ["a"] * 1001}, "has more than 1000 elements"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "",
)
def test_malformed_parameters_are_refused_naming_the_key(request_type: str, payload: Any, message: str) -> None:
    assert message in rejected(request_type, payload)


def test_deeply_nested_free_form_values_are_refused() -> None:
    value: Any = "leaf"
    for _ in range(40):
        value = {"k": value}
    assert "nests deeper than 16 levels" in rejected(RAW, {"RequestType": "InstallApplication", "Configuration": value})


def test_oversized_data_and_commands_are_refused() -> None:
    huge = b"\x00" * (MAX_DATA_BYTES + 1)
    assert "ClearPasscode.UnlockToken is larger than Pippin sends" in rejected("ClearPasscode", {"UnlockToken": huge})
    as_text = base64.b64encode(huge).decode()
    assert "is larger than Pippin sends" in rejected("ClearPasscode", {"UnlockToken": as_text})
    image = b"\x00" * (MAX_DATA_BYTES - 10)
    two = {"Settings": [{"Item": "Wallpaper", "Image": image, "Where": w} for w in (1, 2)]}
    assert f"Settings is larger than Pippin sends ({MAX_COMMAND_BYTES} bytes)" in rejected("Settings", two)


def test_an_error_message_never_echoes_a_long_hostile_value() -> None:
    message = rejected(RAW, {"RequestType": "A" * 10_000})
    assert len(message) < 200
    assert len(rejected("SecurityInfo", {"K" * 10_000: 1})) < 200


# --- InstallProfile: hostile bodies ---------------------------------------------------------------------------


def test_install_profile_sends_the_profile_as_data_signed_or_not() -> None:
    for body in (profile(), signed(profile())):
        queued = build_command("InstallProfile", {"Payload": body}, device=IPHONE)
        assert queued.command == {"RequestType": "InstallProfile", "Payload": body}
    encrypted = plistlib.dumps(
        {**{k: v for k, v in profile_plist().items() if k != "PayloadContent"}, "EncryptedPayloadContent": b"\x30\x80"}
    )
    build_command("InstallProfile", {"Payload": encrypted})


_ENTITIES = (
    b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    b'<plist version="1.0"><dict><key>PayloadType</key><string>&b;</string></dict></plist>'
)
_EXTERNAL = (
    b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<plist version="1.0"><dict><key>PayloadType</key><string>&x;</string></dict></plist>'
)
#: A binary plist whose one array holds itself: plistlib parses it into a cyclic list.
_CYCLIC_BINARY = b"bplist00" + bytes([0xA1, 0x00, 0x08]) + bytes(6) + bytes([1, 1]) + struct.pack(">QQQ", 1, 0, 10)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_ENTITIES, "declares a document type or entities"),
        (_EXTERNAL, "declares a document type or entities"),
        (plistlib.dumps(profile_plist(), fmt=plistlib.FMT_BINARY), "it is a binary plist"),
        (_CYCLIC_BINARY, "it is a binary plist"),
        (signed(_CYCLIC_BINARY), "it is a binary plist"),
        (profile()[: len(profile()) // 2], "it is not a well-formed XML plist"),
        (b"<plist><array/></plist>", "its plist is not a dictionary"),
        (b"", "it is empty"),
        (b"   \n", "it is empty"),
        (b"\x00" * 10, "neither an XML plist nor a well-formed CMS"),
        (signed(profile())[:-40], "neither an XML plist nor a well-formed CMS"),
        (signed(profile())[:12], "neither an XML plist nor a well-formed CMS"),
        (b"\x30\x80" * 5000, "neither an XML plist nor a well-formed CMS"),
        (signed(profile(), detached=True), "its signature does not carry the profile"),
        (signed(b"not a plist"), "it is not a well-formed XML plist"),
        (signed(plistlib.dumps(profile_plist(), fmt=plistlib.FMT_BINARY)), "it is a binary plist"),
        (profile(PayloadType="com.apple.wifi.managed"), "its PayloadType is not Configuration"),
        (profile(PayloadUUID=""), "it lacks a usable PayloadUUID"),
        (profile(PayloadIdentifier=5), "it lacks a usable PayloadIdentifier"),
        (profile(PayloadVersion=2), "its PayloadVersion is not 1"),
        (profile(PayloadVersion=True), "its PayloadVersion is not 1"),
        (profile(PayloadContent="x"), "its PayloadContent is not a list of payloads"),
        (profile({"PayloadType": "com.apple.wifi.managed"}), "(payload 0) is not a profile Pippin sends"),
        (mdm_profile(), "it holds an MDM payload"),
        (b"<" + b" " * (MAX_DATA_BYTES + 1), "is larger than Pippin sends"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_hostile_install_profile_bodies_are_refused(body: bytes, reason: str) -> None:
    assert reason in rejected("InstallProfile", {"Payload": body})


def test_a_profile_a_little_under_the_bound_is_sent() -> None:
    padded = profile(PayloadDescription="p" * (MAX_DATA_BYTES - 4096))
    assert len(padded) <= MAX_DATA_BYTES
    build_command("InstallProfile", {"Payload": padded})


# --- whatever the input, a refusal or a command that plists -----------------------------------------------------

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_known_keys = st.sampled_from(
    ["Message", "PhoneNumber", "PIN", "Queries", "Payload", "Identifier", "Settings", "ReturnToService",
     "PreserveDataPlan", "UnlockToken", "ManagedOnly", "Items", "Footnote", "RequestType"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    request_type=st.sampled_from([*request_types(), "Nope"]),
    payload=st.dictionaries(_known_keys | st.text(max_size=10), _values, max_size=4),
)
def test_any_parameters_give_a_refusal_or_a_command_that_plists(request_type: str, payload: dict[str, Any]) -> None:
    try:
        queued = build_command(request_type, payload, device=IPHONE)
    except CommandRejected as refused:
        assert refused.message
        return
    plistlib.loads(plistlib.dumps(queued.command, fmt=plistlib.FMT_XML))
