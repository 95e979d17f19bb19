"""Apple's DEP shapes: captured responses parse, lenient reading of odd values, strict profile writing."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from pippin.dep.wire import (
    Account,
    AssignProfileResult,
    DEPDevice,
    DevicePage,
    Profile,
    ReplacementDetails,
    SessionResponse,
    parse_device_details,
)
from tests.conftest import fixture_path


def _load(*parts: str) -> Any:
    return json.loads(fixture_path(*parts).read_text())


def test_captured_account_parses_and_advertises_page_limits() -> None:
    account = Account.model_validate(_load("micromdm", "dep_account_response.json"))
    assert account.server_uuid == "6666ED66666666666666666666666666"
    assert account.org_type == "org"
    assert account.limit_for("/server/devices") == 5000
    assert account.limit_for("/devices/sync") == 5000
    assert account.limit_for("/account") is None
    assert account.limit_for("/nowhere") is None


def test_captured_fetch_page_parses_with_aware_times_and_raw_record() -> None:
    raw = _load("micromdm", "dep_device_response.json")
    page = DevicePage.model_validate(raw)
    assert page.more_to_follow is False
    assert page.fetched_until == datetime(2018, 9, 8, 17, 28, 18, tzinfo=UTC)
    device = page.devices[0]
    assert device.serial_number == "C02T0HL0GGC0"
    assert device.profile_assign_time == datetime(2018, 9, 8, 16, 49, 9, tzinfo=UTC)
    assert device.record == raw["devices"][0]


def test_captured_empty_sync_page_parses() -> None:
    page = DevicePage.model_validate(_load("micromdm", "dep_empty_sync_response.json"))
    assert page.devices == []
    assert page.cursor.startswith("MDow")


def test_captured_device_details_parse_per_serial() -> None:
    raw = _load("micromdm", "dep_device_details_response.json")
    details = parse_device_details(raw)
    detail = details["C02T0HL0GGC0"]
    assert detail.response_status == "SUCCESS"
    assert detail.device is not None
    assert detail.device.record == raw["devices"]["C02T0HL0GGC0"]


def test_not_accessible_detail_has_no_record() -> None:
    details = parse_device_details({"devices": {"NOPE1": {"response_status": "NOT_ACCESSIBLE"}}})
    assert details["NOPE1"].response_status == "NOT_ACCESSIBLE"
    assert details["NOPE1"].device is None


@pytest.mark.parametrize("payload", [[], {"devices": []}, {"devices": {"A": "SUCCESS"}}, "x"])
def test_malformed_device_details_are_refused(payload: object) -> None:
    with pytest.raises(ValueError, match=r"devices|device entry"):
        parse_device_details(payload)


def test_captured_profiles_parse() -> None:
    fetched = Profile.model_validate(_load("micromdm", "dep_fetch_profile_response.json"))
    assert fetched.profile_uuid == "C1F123098EB5074580041E69883004C3"
    assert fetched.skip_setup_items == ["AppleID", "Android"]
    example = Profile.model_validate(_load("nanodep", "dep-profile.example.json"))
    assert example.devices == ["SERIAL1", "SERIAL2"]


def test_sync_record_tolerates_zero_time_empty_status_unknown_keys_and_sparse_deletes() -> None:
    raw = {
        "serial_number": "F2LXXX",
        "profile_status": "",
        "op_type": "deleted",
        "op_date": "2024-03-01T10:00:00Z",
        "profile_push_time": "0001-01-01T00:00:00Z",
        "brand_new_field": {"nested": [1, 2]},
        "imei": "350000000000001",
        "wifi_mac_address": ["aa:bb"],
    }
    device = DEPDevice.model_validate(raw)
    assert device.profile_status is None
    assert device.profile_push_time is None
    assert device.op_date == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert device.imei == ["350000000000001"]
    assert device.wifi_mac_address == "aa:bb"
    assert device.model_extra == {"brand_new_field": {"nested": [1, 2]}}
    assert device.record == raw
    assert device.record is not raw


def test_offset_and_naive_times_become_utc() -> None:
    device = DEPDevice.model_validate({"serial_number": "S", "op_date": "2024-03-01T12:00:00+02:00"})
    assert device.op_date == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert device.op_date is not None and device.op_date.tzinfo is UTC
    naive = DEPDevice.model_validate({"serial_number": "S", "op_date": "2024-03-01T12:00:00"})
    assert naive.op_date == datetime(2024, 3, 1, 12, tzinfo=UTC)


def test_zero_fetched_until_reads_as_none() -> None:
    page = DevicePage.model_validate(
        {"devices": [], "cursor": "c", "more_to_follow": False, "fetched_until": "0001-01-01T00:00:00Z"}
    )
    assert page.fetched_until is None


@pytest.mark.parametrize(
    "raw",
    [
        {"serial_number": ""},
        {"model": "iPhone"},
        {"serial_number": "S", "op_date": "yesterday"},
        {"serial_number": 12},
    ],
)
def test_bad_device_records_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DEPDevice.model_validate(raw)


@pytest.mark.parametrize("raw", [{"devices": []}, {"devices": [], "cursor": ""}, {"cursor": "c", "devices": {}}])
def test_pages_without_a_cursor_or_with_bad_devices_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DevicePage.model_validate(raw)


def test_empty_session_token_is_refused_and_never_shown() -> None:
    with pytest.raises(ValidationError):
        SessionResponse.model_validate({"auth_session_token": ""})
    session = SessionResponse.model_validate({"auth_session_token": "1700000000000O1Osecret"})
    assert "secret" not in repr(session)


def test_profile_writes_every_boolean_even_false_and_omits_unset_strings() -> None:
    profile = Profile(
        profile_name="Corporate", url="https://mdm.example.com/enroll", is_mdm_removable=False, is_supervised=True
    )
    body = profile.to_wire()
    assert body["is_mdm_removable"] is False
    for key in (
        "is_supervised",
        "is_mandatory",
        "await_device_configured",
        "auto_advance_setup",
        "is_multi_user",
        "allow_pairing",
    ):
        assert isinstance(body[key], bool)
    assert "department" not in body
    assert "configuration_web_url" not in body
    assert "profile_uuid" not in body
    assert "devices" not in body
    assert body["skip_setup_items"] == []
    json.dumps(body)


def test_profile_round_trip_keeps_unknown_keys_but_never_sends_profile_uuid() -> None:
    fetched = Profile.model_validate(
        {"profile_name": "P", "url": "https://x/e", "profile_uuid": "AB" * 16, "future_flag": True}
    )
    body = fetched.to_wire()
    assert body["future_flag"] is True
    assert "profile_uuid" not in body


def test_assign_result_with_throttling() -> None:
    result = AssignProfileResult.model_validate(
        {"profile_uuid": "AB" * 16, "devices": {"A": "SUCCESS", "B": "THROTTLED"}, "retry_after_seconds": 3600}
    )
    assert result.retry_after_seconds == 3600
    with pytest.raises(ValidationError):
        AssignProfileResult.model_validate({"devices": {}, "retry_after_seconds": -1})


def test_replacement_details_date() -> None:
    details = ReplacementDetails.model_validate(
        {"serial_number": "NEW1", "original_device_serial_number": "OLD1", "replacement_date": "2025-02-03"}
    )
    assert details.replacement_date == date(2025, 2, 3)
