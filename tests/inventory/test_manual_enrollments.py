"""Devices enrolled with no DEP record appear in the inventory by UDID and serial, in every order and page, and
enrolled devices show what they reported at check-in (UDID, OS version, product, primary user)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from pippin.inventory.devices import count_by_state, find_device, get_device, list_devices
from pippin.inventory.schemas import DeviceFilters, DeviceSort, SortDirection
from pippin.inventory.state import DeviceState
from pippin.store.models import Enrollment, EnrollmentStatus
from tests.inventory.conftest import NOW, Row
from tests.inventory.test_devices import serials

MANUAL = [
    # udid, serial reported, status, product, minutes since last seen
    ("LINK-UDID-1", "C02AB", EnrollmentStatus.enrolled, "iPhone16,2", 4),
    ("LINK-UDID-2", None, EnrollmentStatus.enrolling, "iPad13,1", 8),
    ("LINK-UDID-3", "Z99", EnrollmentStatus.unenrolled, None, 1),
]


@pytest.fixture
def manual(session: Session, fleet: dict[str, Row]) -> dict[str, Row]:
    for udid, serial, status, product, minutes in MANUAL:
        session.add(
            Enrollment(
                udid=udid,
                serial_number=serial,
                status=status,
                product_name=product,
                os_version="26.1",
                primary_user_id=3 if udid.endswith("1") else None,
                first_contact_at=NOW - timedelta(minutes=minutes),
                last_seen_at=NOW - timedelta(minutes=minutes),
            )
        )
    session.flush()
    return fleet


def _every(session: Session, sort: DeviceSort, direction: SortDirection, **filters: object) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = list_devices(
            session,
            filters=DeviceFilters(**filters),
            sort=sort,
            direction=direction,
            limit=2,
            cursor=cursor,  # type: ignore[arg-type]
        )
        seen += serials(page)
        cursor = page.next_cursor
        if cursor is None:
            return seen


@pytest.mark.parametrize("direction", list(SortDirection))
@pytest.mark.parametrize("sort", list(DeviceSort))
def test_every_order_pages_through_dep_devices_and_manual_enrollments_once(
    session: Session, manual: dict[str, Row], sort: DeviceSort, direction: SortDirection
) -> None:
    seen = _every(session, sort, direction)
    assert sorted(seen) == sorted([*manual, "C02AB", "LINK-UDID-2", "Z99"])
    if sort is DeviceSort.serial:
        assert seen == sorted(seen, reverse=direction is SortDirection.desc)


def test_a_manual_enrollment_reads_as_a_device_without_apple_fields(session: Session, manual: dict[str, Row]) -> None:
    device = get_device(session, serial="C02AB")
    assert (device.udid, device.product_name, device.os_version, device.primary_user_id) == (
        "LINK-UDID-1", "iPhone16,2", "26.1", 3,
    )  # fmt: skip
    assert device.enrollment_state is DeviceState.enrolled and not device.has_dep_record
    assert device.apple_status is None and device.token is None
    # No serial reported: found, and listed, by its UDID.
    assert get_device(session, serial="LINK-UDID-2").enrollment_state is DeviceState.not_contacted
    assert find_device(session, serial="LINK-UDID-1") is None  # it has a serial: that is its name


def test_filters_keep_manual_enrollments_only_where_they_can_match(session: Session, manual: dict[str, Row]) -> None:
    assert serials(list_devices(session, filters=DeviceFilters(search="link-udid"))) == ["C02AB", "LINK-UDID-2", "Z99"]
    enrolled = serials(list_devices(session, filters=DeviceFilters(state=DeviceState.enrolled)))
    assert enrolled == ["C02AB", "C02B"]
    assert "Z99" in serials(list_devices(session, filters=DeviceFilters(state=DeviceState.unenrolled)))
    assert "C02AB" not in serials(list_devices(session, filters=DeviceFilters(token="acme")))
    assert "C02AB" not in serials(list_devices(session, filters=DeviceFilters(cannot_enroll=True)))


def test_an_enrolled_dep_device_shows_what_it_reported(session: Session, fleet: dict[str, Row]) -> None:
    enrollment = session.get(Enrollment, "UDID-C02B")
    assert enrollment is not None
    enrollment.os_version, enrollment.product_name, enrollment.primary_user_id = "26.1", "iPad13,16", 9
    session.flush()
    device = get_device(session, serial="C02B")
    assert (device.udid, device.os_version, device.product_name, device.primary_user_id, device.has_dep_record) == (
        "UDID-C02B", "26.1", "iPad13,16", 9, True,
    )  # fmt: skip


def test_manual_enrollments_are_counted_in_their_states(session: Session, fleet: dict[str, Row]) -> None:
    before = count_by_state(session)
    session.add_all(
        [
            Enrollment(udid="COUNTED-1", status=EnrollmentStatus.enrolled),
            Enrollment(udid="COUNTED-2", status=EnrollmentStatus.enrolled),
            Enrollment(udid="COUNTED-3", status=EnrollmentStatus.unenrolled),
            Enrollment(udid="COUNTED-4", status=EnrollmentStatus.enrolling),
        ]
    )
    session.flush()
    after = count_by_state(session)
    assert after[DeviceState.enrolled] == before[DeviceState.enrolled] + 2
    assert after[DeviceState.unenrolled] == before[DeviceState.unenrolled] + 1
    assert after[DeviceState.not_contacted] == before[DeviceState.not_contacted] + 1
    assert sum(after.values()) == sum(before.values()) + 4
