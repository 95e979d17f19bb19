"""What a simulated device answers each command, checked against Apple's ``responsekeys`` for it (read from
``../shared/apple-device-management/mdm/commands`` at test time), and what each command changes on the device."""

from __future__ import annotations

import itertools
import plistlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pippin.sim.iphone.answer_rates import AnswerRates, RateOutOfRange
from pippin.sim.iphone.command_answers import CommandAnswers
from pippin.sim.iphone.command_reading import Aftermath, Answer, CommandUnreadable
from pippin.sim.iphone.device_state import DeviceState, StateDirectory
from pippin.sim.iphone.profiles import ProfileStore, read_profile
from tests.apple_schemas import PLIST_TYPES, apple_commands
from tests.sim.iphone.pki import facts, issue, new_ca, sign_profile
from tests.sim.iphone.profiles import enrollment_profile, plist

#: Keys of every report, not of the command's answer (reference section 3).
REPORT_KEYS = {"UDID", "Status", "CommandUUID", "ErrorChain"}
#: Apple's YAML describes Settings' answer as one dictionary; Apple's documentation (SettingsResponse) and devices
#: answer an array of those dictionaries, one per item.
ARRAY_OF_DESCRIBED = {"Settings.Settings"}
UNLOCK_TOKEN = b"\x07" * 32


def _on_ios(entry: dict[str, Any]) -> bool:
    ios = (entry.get("supportedOS") or {}).get("iOS") or {}
    return ios.get("introduced") != "n/a" and not ios.get("removed")


def _check_value(entry: dict[str, Any], value: object, path: str) -> None:
    kind = PLIST_TYPES[entry["type"]]
    assert isinstance(value, kind), f"{path} is {type(value).__name__}, Apple says {entry['type']}"
    assert not (isinstance(value, bool) and kind in (int, float)), f"{path} is a boolean, Apple says {entry['type']}"
    subkeys = entry.get("subkeys") or []
    if isinstance(value, list) and subkeys:
        for index, item in enumerate(value):
            _check_value(subkeys[0], item, f"{path}[{index}]")
    elif isinstance(value, dict) and subkeys and subkeys[0]["key"] != "ANY":
        _check_keys(subkeys, value, path)


def _check_keys(schema: list[dict[str, Any]], answer: dict[str, Any], path: str) -> None:
    by_key = {entry["key"]: entry for entry in schema}
    for key, value in answer.items():
        assert key in by_key, f"{path}.{key} is not among Apple's response keys"
        entry = by_key[key]
        assert _on_ios(entry), f"{path}.{key} is not an iOS key"
        if f"{path}.{key}" in ARRAY_OF_DESCRIBED:
            assert isinstance(value, list)
            for index, item in enumerate(value):
                _check_value({**entry, "type": "<dictionary>"}, item, f"{path}.{key}[{index}]")
        else:
            _check_value(entry, value, f"{path}.{key}")
    for entry in schema:
        if entry.get("presence") == "required" and _on_ios(entry):
            assert entry["key"] in answer, f"{path} lacks {entry['key']}, which Apple requires"


def check_against_apple(request_type: str, answer: Answer) -> None:
    """The answer's own keys are those Apple's schema lists for ``request_type``, of its types, required ones there."""
    own = {key: value for key, value in answer.report.items() if key not in REPORT_KEYS}
    _check_keys(apple_commands()[request_type].get("responsekeys") or [], own, request_type)


def _device(*, supervised: bool = True, awaiting: bool = False) -> tuple[DeviceState, ProfileStore]:
    state = DeviceState(serial_number="F2LXK0AAHG7F", facts=facts(), enrolled=True, push_token="ab" * 32)
    state.mdm_identity = issue(new_ca("SCEP CA"), "MDM identity")
    state.unlock_token = UNLOCK_TOKEN
    state.managed.supervised, state.managed.awaiting_configuration = supervised, awaiting
    profiles = ProfileStore()
    profiles.install(read_profile(plist(enrollment_profile(locked=True)), trusted=()))
    return state, profiles


_UUIDS = itertools.count(1)


def _run(answers: CommandAnswers, request_type: str, uuid: str | None = None, **arguments: Any) -> Answer:
    """Run one command; each under a UUID of its own unless ``uuid`` says (a device answers a UUID once)."""
    uuid = uuid or f"C-{next(_UUIDS)}"
    body = plistlib.dumps({"CommandUUID": uuid, "Command": {"RequestType": request_type, **arguments}})
    return answers.answer(body)


def _answers(state: DeviceState, profiles: ProfileStore, **rates: Any) -> CommandAnswers:
    clock = lambda: datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # noqa: E731
    return CommandAnswers(state, profiles, trust=[], rates=AnswerRates(**rates), clock=clock)


def _extra_profile(identifier: str = "com.example.wifi") -> bytes:
    return plist(
        {
            "PayloadType": "Configuration",
            "PayloadIdentifier": identifier,
            "PayloadUUID": "9A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9",
            "PayloadVersion": 1,
            "PayloadDisplayName": "Office Wi-Fi",
            "PayloadOrganization": "Example",
            "PayloadContent": [
                {
                    "PayloadType": "com.apple.wifi.managed",
                    "PayloadIdentifier": f"{identifier}.payload",
                    "PayloadUUID": "1A2B3C4D-5E6F-4071-8293-A4B5C6D7E8F0",
                    "PayloadVersion": 1,
                    "SSID_STR": "Office",
                }
            ],
        }
    )


def _all_queries() -> list[str]:
    responses = apple_commands()["DeviceInformation"]["responsekeys"][0]["subkeys"]
    return [entry["key"] for entry in responses]


#: Each command the device runs, with arguments, as a server sends it (and what must be set up first).
ACKNOWLEDGED: list[tuple[str, dict[str, Any]]] = [
    ("DeviceInformation", {"Queries": ["UDID", "DeviceName", "OSVersion"]}),
    ("SecurityInfo", {}),
    ("ProfileList", {}),
    ("InstallProfile", {"Payload": _extra_profile()}),
    ("InstalledApplicationList", {}),
    ("InstalledApplicationList", {"Identifiers": ["com.apple.Pages"], "ManagedAppsOnly": False}),
    ("CertificateList", {}),
    ("DeviceLock", {"Message": "Call IT", "PhoneNumber": "+46 8 123 45"}),
    ("DeviceLock", {}),
    ("EraseDevice", {"PreserveDataPlan": True}),
    ("ClearPasscode", {"UnlockToken": UNLOCK_TOKEN}),
    ("RestartDevice", {}),
    ("ShutDownDevice", {}),
    ("Settings", {"Settings": [{"Item": "DeviceName", "DeviceName": "Kiosk 1"}, {"Item": "DataRoaming"}]}),
    ("EnableLostMode", {"Message": "Lost", "Footnote": "Reward"}),
    ("ActivationLockBypassCode", {}),
    ("DeviceConfigured", {}),
]


@pytest.mark.parametrize(("request_type", "arguments"), ACKNOWLEDGED, ids=[a[0] for a in ACKNOWLEDGED])
def test_each_answer_has_the_keys_and_types_apple_lists(request_type: str, arguments: dict[str, Any]) -> None:
    state, profiles = _device(awaiting=True)
    answer = _run(_answers(state, profiles), request_type, uuid="C-1", **arguments)
    assert answer.report["Status"] == "Acknowledged", answer.report
    assert answer.report["CommandUUID"] == "C-1"
    check_against_apple(request_type, answer)


def test_every_query_apple_lists_is_answered_with_apples_types_on_a_cellular_and_a_wifi_device() -> None:
    for cellular in (True, False):
        state, profiles = _device()
        state.facts = facts(cellular=cellular)
        answer = _run(_answers(state, profiles), "DeviceInformation", Queries=_all_queries())
        check_against_apple("DeviceInformation", answer)
        responses = answer.report["QueryResponses"]
        assert ("IMEI" in responses) is cellular and ("ICCID" in responses) is cellular
        assert responses["UDID"] == state.facts.udid and responses["SerialNumber"] == "F2LXK0AAHG7F"
        assert responses["ProductName"] == "iPhone15,2" and responses["ModelName"] == "iPhone"
        assert responses["IsSupervised"] is True and responses["PushToken"] == b"\xab" * 32


def test_lost_mode_answers_and_the_location_only_in_lost_mode() -> None:
    state, profiles = _device()
    answers = _answers(state, profiles)
    refused = _run(answers, "DeviceLocation")
    assert refused.report["Status"] == "Error" and refused.report["ErrorChain"][0]["ErrorCode"] == 12067
    assert _run(answers, "PlayLostModeSound").report["Status"] == "Error"
    assert _run(answers, "EnableLostMode", Message="Please return").report["Status"] == "Acknowledged"
    location = _run(answers, "DeviceLocation")
    check_against_apple("DeviceLocation", location)
    assert location.report["Timestamp"] == "2026-12-03T12:00:00Z"
    assert _run(answers, "PlayLostModeSound").report["Status"] == "Acknowledged"
    info = _run(answers, "DeviceInformation", Queries=["IsMDMLostModeEnabled"])
    assert info.report["QueryResponses"] == {"IsMDMLostModeEnabled": True}
    locked = _run(answers, "DeviceLock", Message="Hello")
    assert locked.report["MessageResult"] == "DeviceInLostMode"
    assert _run(answers, "DisableLostMode").report["Status"] == "Acknowledged"
    assert state.managed.lost_mode is None
    assert _run(answers, "DisableLostMode").report["Status"] == "Error"


def test_supervised_only_commands_are_unknown_to_an_unsupervised_device_as_on_ios() -> None:
    state, profiles = _device(supervised=False)
    answers = _answers(state, profiles)
    for request_type in ("EnableLostMode", "RestartDevice", "ShutDownDevice", "ActivationLockBypassCode"):
        answer = _run(answers, request_type, Message="x")
        (error,) = answer.report["ErrorChain"]
        assert (error["ErrorCode"], error["ErrorDomain"]) == (12021, "MCMDMErrorDomain")
        assert error["USEnglishDescription"] == f"“{request_type}” is not a valid request type."
        assert answer.aftermath is None
    named = _run(answers, "Settings", Settings=[{"Item": "DeviceName", "DeviceName": "Kiosk"}])
    assert named.report["Status"] == "Acknowledged" and named.report["Settings"][0]["Status"] == "Error"
    assert state.managed.device_name is None


def test_install_list_and_remove_a_profile_and_errors_for_bad_or_unknown_ones() -> None:
    state, profiles = _device()
    answers = _answers(state, profiles)
    assert _run(answers, "InstallProfile", Payload=_extra_profile()).report["Status"] == "Acknowledged"
    listed = _run(answers, "ProfileList").report["ProfileList"]
    assert [(p["PayloadIdentifier"], p["IsManaged"]) for p in listed] == [
        ("com.example.mdm.enrollment", True),
        ("com.example.wifi", True),
    ]
    assert listed[1]["PayloadDisplayName"] == "Office Wi-Fi" and listed[0]["PayloadRemovalDisallowed"] is True

    for garbage in (b"not a profile", plist({"PayloadType": "Configuration"}), b"\x30\x80garbage"):
        refused = _run(answers, "InstallProfile", Payload=garbage)
        assert refused.report["Status"] == "Error", garbage
        assert [e["ErrorDomain"] for e in refused.report["ErrorChain"]] == [
            "MCInstallationErrorDomain",
            "MCProfileErrorDomain",
        ]
    unknown = _run(answers, "RemoveProfile", Identifier="com.example.nothing")
    assert unknown.report["Status"] == "Error" and unknown.report["ErrorChain"][0]["ErrorCode"] == 12013
    assert _run(answers, "RemoveProfile", Identifier="com.example.wifi").report["Status"] == "Acknowledged"
    assert profiles.find("com.example.wifi") is None and state.managed.managed_profiles == []
    removed = _run(answers, "RemoveProfile", Identifier="com.example.mdm.enrollment")
    assert removed.report["Status"] == "Acknowledged" and removed.aftermath is Aftermath.unenroll


def test_a_profile_signed_by_an_unknown_signer_installs_unverified() -> None:
    state, profiles = _device()
    signed = sign_profile(_extra_profile("com.example.signed"), issue(new_ca("Someone"), "Signer"))
    answer = _run(_answers(state, profiles), "InstallProfile", Payload=signed)
    assert answer.report["Status"] == "Acknowledged"
    installed = profiles.find("com.example.signed")
    assert installed is not None and not installed.verified


def test_the_device_lock_name_and_passcode_change_the_device_and_survive_a_restart(tmp_path: Path) -> None:
    state, profiles = _device()
    answers = _answers(state, profiles)
    assert _run(answers, "DeviceLock", Message="Call IT").report["MessageResult"] == "Success"
    _run(answers, "Settings", Settings=[{"Item": "DeviceName", "DeviceName": "Kiosk 1"}])
    wrong = _run(answers, "ClearPasscode", UnlockToken=b"wrong")
    assert wrong.report["Status"] == "Error" and state.managed.passcode_present
    assert _run(answers, "ClearPasscode", UnlockToken=UNLOCK_TOKEN).report["Status"] == "Acknowledged"
    assert _run(answers, "DeviceLock", Message="Again").report["MessageResult"] == "NoPasscodeSet"
    states = StateDirectory(tmp_path)
    states.save(state)
    again = states.load(state.serial_number)
    assert (again.managed.locked, again.managed.lock_message, again.managed.device_name) == (True, "Again", "Kiosk 1")
    reread = _run(_answers(again, profiles), "DeviceInformation", Queries=["DeviceName"])
    assert reread.report["QueryResponses"] == {"DeviceName": "Kiosk 1"}


def test_device_configured_releases_a_device_awaiting_configuration_and_errs_otherwise() -> None:
    state, profiles = _device(awaiting=True)
    answers = _answers(state, profiles)
    assert _run(answers, "DeviceConfigured").report["Status"] == "Acknowledged"
    assert not state.managed.awaiting_configuration
    again = _run(answers, "DeviceConfigured", uuid="C-2")
    assert again.report["ErrorChain"][0]["ErrorCode"] == 101


def test_the_bypass_code_is_stable_for_the_device() -> None:
    state, profiles = _device()
    answers = _answers(state, profiles)
    first = _run(answers, "ActivationLockBypassCode").report["ActivationLockBypassCode"]
    assert first == _run(answers, "ActivationLockBypassCode").report["ActivationLockBypassCode"]
    assert len(first) == 29 and first.count("-") == 4


def test_erase_restart_and_shutdown_are_acknowledged_then_followed() -> None:
    state, profiles = _device()
    answers = _answers(state, profiles)
    for request_type, aftermath in (
        ("EraseDevice", Aftermath.erase),
        ("RestartDevice", Aftermath.restart),
        ("ShutDownDevice", Aftermath.shut_down),
    ):
        answer = _run(answers, request_type)
        assert (answer.report["Status"], answer.aftermath) == ("Acknowledged", aftermath)


def test_unknown_and_malformed_commands() -> None:
    state, profiles = _device()
    answers = _answers(state, profiles)
    unknown = _run(answers, "MakeCoffee")
    assert unknown.report["ErrorChain"][0]["ErrorCode"] == 12021
    malformed = [
        plistlib.dumps({"CommandUUID": "C-9"}),
        plistlib.dumps({"CommandUUID": "C-9", "Command": "DeviceLock"}),
        plistlib.dumps({"CommandUUID": "C-9", "Command": {"RequestType": 7}}),
        plistlib.dumps({"CommandUUID": "C-9", "Command": {"RequestType": "DeviceInformation"}}),
        plistlib.dumps({"CommandUUID": "C-9", "Command": {"RequestType": "DeviceInformation", "Queries": [1]}}),
        plistlib.dumps({"CommandUUID": "C-9", "Command": {"RequestType": "InstallProfile", "Payload": "text"}}),
        plistlib.dumps({"CommandUUID": "C-9", "Command": {"RequestType": "DeviceLock", "Message": True}}),
        plistlib.dumps({"CommandUUID": "C-9", "Command": {"RequestType": "Settings", "Settings": [{}]}}),
        plistlib.dumps({"CommandUUID": "C-9", "Command": {"RequestType": "EnableLostMode"}}),
    ]
    for body in malformed:
        assert answers.answer(body).report == {"CommandUUID": "C-9", "Status": "CommandFormatError"}, body
    for unreadable in (
        b"",
        b"garbage",
        plistlib.dumps({"CommandUUID": "C-9", "Command": {}}, fmt=plistlib.FMT_BINARY),
        plistlib.dumps({"Command": {"RequestType": "DeviceLock"}}),
        plistlib.dumps([1, 2]),
        plistlib.dumps({"CommandUUID": "x" * 300, "Command": {}}),
        b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaa">]><plist><dict></dict></plist>',
        b"<plist><dict><key>CommandUUID</key><string>C",
    ):
        with pytest.raises(CommandUnreadable):
            answers.answer(unreadable)


def test_a_not_now_rate_puts_a_command_off_once_then_runs_it() -> None:
    state, profiles = _device()
    answers = _answers(state, profiles, not_now_rate=1.0)
    first = _run(answers, "DeviceInformation", uuid="C-1", Queries=["UDID"])
    assert first.report == {"CommandUUID": "C-1", "Status": "NotNow"}
    later = _run(answers, "DeviceInformation", uuid="C-1", Queries=["UDID"])
    assert later.report["Status"] == "Acknowledged" and later.report["QueryResponses"]["UDID"] == facts().udid


def test_an_error_rate_fails_commands_with_an_error_chain() -> None:
    state, profiles = _device()
    answer = _run(_answers(state, profiles, error_rate=1.0), "DeviceLock")
    assert answer.report["Status"] == "Error" and answer.report["ErrorChain"][0]["ErrorCode"] == 99998
    assert not state.managed.locked, "a failed command changes nothing"


def test_rates_pick_about_their_share_and_the_same_commands_for_the_same_seed() -> None:
    uuids = [f"CMD-{n}" for n in range(2000)]
    rates = AnswerRates(not_now_rate=0.3, error_rate=0.1, seed=7)
    put_off = [u for u in uuids if rates.puts_off("UDID-1", u)]
    failed = [u for u in uuids if rates.fails("UDID-1", u)]
    assert 0.25 < len(put_off) / len(uuids) < 0.35 and 0.07 < len(failed) / len(uuids) < 0.13
    assert put_off == [u for u in uuids if AnswerRates(not_now_rate=0.3, seed=7).puts_off("UDID-1", u)]
    assert put_off != [u for u in uuids if AnswerRates(not_now_rate=0.3, seed=8).puts_off("UDID-1", u)]
    assert not any(AnswerRates().puts_off("UDID-1", u) or AnswerRates().fails("UDID-1", u) for u in uuids)


@pytest.mark.parametrize("rate", [-0.1, 1.01, float("nan"), True])
def test_a_rate_outside_zero_to_one_is_refused(rate: float) -> None:
    with pytest.raises(RateOutOfRange):
        AnswerRates(not_now_rate=rate)
    with pytest.raises(RateOutOfRange):
        AnswerRates(error_rate=rate)


def test_queries_newer_than_the_devices_ios_are_left_out() -> None:
    state, profiles = _device()
    state.facts = facts(os_version="13.7")
    answers = _answers(state, profiles)
    responses = _run(answers, "DeviceInformation", Queries=["TimeZone", "SoftwareUpdateDeviceID", "UDID"])
    assert set(responses.report["QueryResponses"]) == {"UDID"}
    assert "AutoLockTime" not in _run(answers, "SecurityInfo").report["SecurityInfo"]
    state.facts = facts(os_version="18.1")
    responses = _run(answers, "DeviceInformation", Queries=["TimeZone", "SoftwareUpdateDeviceID"])
    assert set(responses.report["QueryResponses"]) == {"TimeZone", "SoftwareUpdateDeviceID"}


def test_a_command_handed_out_again_is_recognised_by_its_uuid_and_not_run_again() -> None:
    state, profiles = _device()
    answers = _answers(state, profiles)
    first = _run(answers, "RestartDevice", uuid="R-1")
    again = _run(answers, "RestartDevice", uuid="R-1")
    assert (first.aftermath, again.aftermath) == (Aftermath.restart, None)
    assert again.report == {"CommandUUID": "R-1", "Status": "Acknowledged"}
    query = _run(answers, "DeviceInformation", uuid="Q-1", Queries=["DeviceName"])
    asked_again = _run(answers, "DeviceInformation", uuid="Q-1", Queries=["DeviceName"])
    assert asked_again.report == query.report  # a query is simply answered again
    assert state.managed.answered == {"R-1": "Acknowledged", "Q-1": "Acknowledged"}
    assert state.managed.repeated_deliveries == 2


def test_a_put_off_command_is_not_remembered_as_answered_until_it_is_run() -> None:
    state, profiles = _device()
    answers = _answers(state, profiles, not_now_rate=1.0)
    assert _run(answers, "SecurityInfo", uuid="N-1").report["Status"] == "NotNow"
    assert state.managed.answered == {}
    assert _run(answers, "SecurityInfo", uuid="N-1").report["Status"] == "Acknowledged"
    assert state.managed.answered == {"N-1": "Acknowledged"} and state.managed.repeated_deliveries == 0
