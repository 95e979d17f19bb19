"""Unreachable devices in the inventory: exactly the enrollments whose current push token APNs refused, with
APNs's reason, the same as the push status says, in the same few queries per page. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from pippin.inventory.devices import get_device, list_devices
from pippin.inventory.schemas import DeviceFilters, DeviceSort, SortDirection
from pippin.inventory.state import DeviceState
from pippin.push.device_status import get_device_push_status
from pippin.push.schemas import TokenState
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import EnrollmentStatus, PushDelivery
from tests.mdm.command_fleet import NOW, enrolled_device

TOKEN = "ab" * 32  # what command_fleet gives every enrolled device
REFUSED_AT = NOW - timedelta(hours=3)
UNREACHABLE = {"D1": "BadDeviceToken", "M1": "Unregistered"}


def _push_row(session: Session, udid: str, *, refused: str | None, reason: str | None = None) -> None:
    session.add(
        PushDelivery(
            udid=udid,
            attempts=0,
            refused_token=refused,
            token_refused_at=REFUSED_AT if refused else None,
            token_refused_reason=reason,
            pushes=1,
            delivered=0,
            token_refusals=1 if refused else 0,
            certificate_refusals=0,
            retryable_failures=0,
            request_errors=0,
            expired=0,
        )
    )


@pytest.fixture
def fleet(session_factory: SessionFactory) -> list[str]:
    with transaction(session_factory) as session:
        _push_row(session, enrolled_device(session, "D1"), refused=TOKEN, reason="BadDeviceToken")
        # Refused an older token; the TokenUpdate since brought this one: reachable, with nothing cleared.
        _push_row(session, enrolled_device(session, "D2"), refused="cd" * 32, reason="BadDeviceToken")
        _push_row(session, enrolled_device(session, "D3"), refused=None)
        enrolled_device(session, "D4")  # never pushed
        # Checked out: no token any more, whatever was refused before.
        _push_row(session, enrolled_device(session, "D5", status=EnrollmentStatus.unenrolled), refused=TOKEN)
        _push_row(session, enrolled_device(session, "M1", dep=False), refused=TOKEN, reason="Unregistered")
        enrolled_device(session, "M2", dep=False)
    return ["D1", "D2", "D3", "D4", "D5", "M1", "M2"]


def test_the_unreachable_filter_lists_exactly_the_devices_whose_current_token_was_refused(
    session_factory: SessionFactory, fleet: list[str]
) -> None:
    with read_transaction(session_factory) as session:
        page = list_devices(session, filters=DeviceFilters(unreachable=True))
        assert [(d.serial_number, d.unreachable, d.unreachable_reason) for d in page.devices] == [
            ("D1", True, "BadDeviceToken"), ("M1", True, "Unregistered"),
        ]  # fmt: skip
        assert {d.unreachable_since for d in page.devices} == {REFUSED_AT}
        everything = list_devices(session)
        assert [d.serial_number for d in everything.devices] == fleet
        for device in everything.devices:
            assert device.unreachable is (device.serial_number in UNREACHABLE)
            assert device.unreachable_reason == UNREACHABLE.get(device.serial_number)
            # The inventory says what the device's push status says.
            status = get_device_push_status(session, udid=f"UDID-{device.serial_number}")
            assert (status.token_state is TokenState.refused) is device.unreachable
        assert get_device(session, serial="M1").unreachable_reason == "Unregistered"
        assert get_device(session, serial="D2").unreachable is False


def test_unreachable_combines_with_the_other_filters_sorts_and_pages(
    session_factory: SessionFactory, fleet: list[str]
) -> None:
    with read_transaction(session_factory) as session:
        enrolled = DeviceFilters(unreachable=True, state=DeviceState.enrolled)
        assert [d.serial_number for d in list_devices(session, filters=enrolled).devices] == ["D1", "M1"]
        assert (
            list_devices(session, filters=DeviceFilters(unreachable=True, search="D")).devices[0].serial_number == "D1"
        )
        only_dep = DeviceFilters(unreachable=True, cannot_enroll=True)  # a filter on Apple's side: no manual ones
        assert [d.serial_number for d in list_devices(session, filters=only_dep).devices] == []
        seen, cursor = [], None
        while True:
            page = list_devices(
                session,
                filters=DeviceFilters(unreachable=True),
                sort=DeviceSort.state,
                direction=SortDirection.desc,
                limit=1,
                cursor=cursor,
            )
            seen += [d.serial_number for d in page.devices]
            if (cursor := page.next_cursor) is None:
                break
        assert sorted(seen) == ["D1", "M1"] and len(seen) == 2


def _statements(engine: Engine, session_factory: SessionFactory, filters: DeviceFilters) -> int:
    counted: list[str] = []

    def count(*args: object) -> None:
        counted.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        with read_transaction(session_factory) as session:
            list_devices(session, filters=filters, limit=100)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return sum(1 for sql in counted if sql.lstrip().upper().startswith("SELECT"))


def test_a_page_costs_the_same_few_queries_however_many_devices_are_unreachable(
    engine: Engine, session_factory: SessionFactory, fleet: list[str]
) -> None:
    few = _statements(engine, session_factory, DeviceFilters(unreachable=True))
    plain = _statements(engine, session_factory, DeviceFilters())
    with transaction(session_factory) as session:
        for n in range(40):
            _push_row(session, enrolled_device(session, f"U{n:02d}"), refused=TOKEN, reason="Unregistered")
            _push_row(session, enrolled_device(session, f"V{n:02d}", dep=False), refused=TOKEN, reason="Unregistered")
    assert _statements(engine, session_factory, DeviceFilters(unreachable=True)) == few
    assert _statements(engine, session_factory, DeviceFilters()) == plain
    with read_transaction(session_factory) as session:
        assert len(list_devices(session, filters=DeviceFilters(unreachable=True), limit=500).devices) == 82
