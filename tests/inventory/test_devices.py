"""Listing, filtering, sorting both ways, paging and showing the corporate-owned devices, on both databases."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from pippin.errors import InvalidInput, NotFound
from pippin.inventory.cursor import Position, encode_cursor
from pippin.inventory.devices import (
    count_assignment_problems,
    count_by_state,
    count_cannot_enroll,
    get_device,
    list_devices,
)
from pippin.inventory.schemas import AssignmentFilter, DeviceFilters, DeviceSort, InventoryPage, SortDirection
from pippin.inventory.state import DeviceState
from pippin.store.models import AssignmentStatus
from tests.inventory.conftest import NOW, STATES, Row


def serials(page: InventoryPage) -> list[str]:
    return [device.serial_number for device in page.devices]


def test_devices_are_listed_in_serial_order_with_token_profile_and_derived_state(
    session: Session, fleet: dict[str, Row]
) -> None:
    page = list_devices(session)
    assert serials(page) == sorted(fleet) and page.next_cursor is None
    by_serial = {device.serial_number: device for device in page.devices}
    assert {serial: device.enrollment_state for serial, device in by_serial.items()} == STATES
    assert by_serial["C02A"].token == "acme" and by_serial["F00"].token is None
    assert by_serial["C02B"].profile == "Staff" and by_serial["C02B"].enrollment_status == "enrolled"
    assert by_serial["C02A"].cannot_enroll and not by_serial["F00"].cannot_enroll
    assert not by_serial["DX9"].cannot_enroll  # removed at Apple: not this server's to enroll


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (DeviceFilters(state=DeviceState.not_contacted), ["C02A", "F00"]),
        (DeviceFilters(state=DeviceState.pending_reset), ["C02C"]),
        (DeviceFilters(state=DeviceState.removed), ["DX9"]),
        (DeviceFilters(token="acme"), ["C02A", "C02B", "C02C"]),
        (DeviceFilters(token="nobody"), []),
        (DeviceFilters(profile="Staff"), ["C02B", "C02C", "DX9", "E11", "F00"]),
        (DeviceFilters(assignment=AssignmentFilter.none), ["C02A", "E12"]),
        (DeviceFilters(assignment=AssignmentFilter.throttled), ["F00"]),
        (DeviceFilters(cannot_enroll=True), ["C02A", "E12"]),
        (DeviceFilters(search="ipad"), ["C02B", "E12", "F00"]),
        (DeviceFilters(search="TAG-"), ["C02A", "C02C", "DX9"]),
        (DeviceFilters(search="100%_"), ["C02B"]),
        (DeviceFilters(search="%"), ["C02B"]),
        (DeviceFilters(search="_"), ["C02B"]),
        (DeviceFilters(state=DeviceState.enrolled, token="acme", search="air"), ["C02B"]),
    ],
)
def test_filters_combine_and_search_treats_wildcards_literally(
    session: Session, fleet: dict[str, Row], filters: DeviceFilters, expected: list[str]
) -> None:
    assert serials(list_devices(session, filters=filters)) == expected


def _expected_order(fleet: dict[str, Row], sort: DeviceSort, direction: SortDirection) -> list[str]:
    def key(row: Row) -> tuple[Any, str]:
        value: Any = {
            DeviceSort.serial: "",
            DeviceSort.model: row.model or "",
            DeviceSort.asset_tag: row.tag or "",
            DeviceSort.state: STATES[row.serial],
            DeviceSort.last_synced: -row.synced_minutes_ago,
        }[sort]
        return value, row.serial

    return [row.serial for row in sorted(fleet.values(), key=key, reverse=direction is SortDirection.desc)]


@pytest.mark.parametrize("direction", list(SortDirection))
@pytest.mark.parametrize("sort", list(DeviceSort))
def test_every_sort_pages_through_every_device_once_in_order(
    session: Session, fleet: dict[str, Row], sort: DeviceSort, direction: SortDirection
) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(len(fleet)):
        page = list_devices(session, sort=sort, direction=direction, limit=2, cursor=cursor)
        seen += serials(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == _expected_order(fleet, sort, direction)


def test_paging_keeps_the_filters(session: Session, fleet: dict[str, Row]) -> None:
    filters = DeviceFilters(profile="Staff")
    first = list_devices(session, filters=filters, sort=DeviceSort.model, limit=3)
    rest = list_devices(session, filters=filters, sort=DeviceSort.model, limit=3, cursor=first.next_cursor)
    assert serials(first) + serials(rest) == ["E11", "C02B", "F00", "C02C", "DX9"]


def _raw_cursor(fields: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0},
        {"limit": 501},
        {"filters": DeviceFilters(search="x" * 129)},
        {"cursor": "not base64!"},
        {"cursor": ""},
        {"cursor": "A" * 500},
        {"cursor": _raw_cursor(["serial", "asc", "", "C"]) + "x"},
        {"cursor": _raw_cursor(["serial", "asc", ""])},
        {"cursor": _raw_cursor(["serial", "asc", 3, "C"])},
        {"cursor": _raw_cursor(["serial", "asc", "", "x" * 65])},
        {"cursor": _raw_cursor(["model", "asc", "", "C"])},  # made for another order
        {"cursor": _raw_cursor(["serial", "desc", "", "C"])},  # made for the other direction
        {"cursor": _raw_cursor(["last_synced", "asc", "yesterday", "C"]), "sort": DeviceSort.last_synced},
        {"cursor": _raw_cursor(["last_synced", "asc", "2026-03-02T09:00:00", "C"]), "sort": DeviceSort.last_synced},
    ],
)
def test_bad_queries_are_refused_with_a_clear_error(
    session: Session, fleet: dict[str, Row], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInput):
        list_devices(session, **kwargs)


def test_cursors_round_trip_any_serial_and_time(session: Session, fleet: dict[str, Row]) -> None:
    for serial in ["C02A", "é/+=", "x" * 64]:
        cursor = encode_cursor(Position(DeviceSort.serial, SortDirection.asc, "", serial))
        list_devices(session, cursor=cursor)
    after = Position(DeviceSort.last_synced, SortDirection.desc, NOW - timedelta(minutes=1), "C02B")
    page = list_devices(session, sort=DeviceSort.last_synced, direction=SortDirection.desc, cursor=encode_cursor(after))
    assert serials(page)[:1] == ["F00"]


def test_show_finds_one_device_case_sensitively(session: Session, fleet: dict[str, Row]) -> None:
    assert get_device(session, serial="DX9").token == "other"
    assert get_device(session, serial="C02C").enrollment_state == "pending_reset"
    with pytest.raises(NotFound, match="c02a"):
        get_device(session, serial="c02a")
    with pytest.raises(NotFound):
        get_device(session, serial="x" * 10_000)


def test_counts_for_the_overview(session: Session, fleet: dict[str, Row]) -> None:
    counts = count_by_state(session)
    assert set(counts) == set(DeviceState)
    assert {state.value: count for state, count in counts.items() if count} == {
        "not_contacted": 2,
        "enrolled": 1,
        "pending_reset": 1,
        "removed": 1,
        "unenrolled": 1,
        "failed": 1,
    }
    assert count_cannot_enroll(session) == 2
    assert count_assignment_problems(session) == {AssignmentStatus.failed: 1, AssignmentStatus.throttled: 1}
