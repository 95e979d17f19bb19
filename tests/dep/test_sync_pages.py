"""Applying Apple-shaped pages to the inventory (reference sections 4, 6, 8), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from pippin.dep.devices import PageCounts, PageMode, apply_device_page, latest_per_serial, mark_missing_removed
from pippin.dep.wire import DEPDevice
from pippin.store.models import DEPToken, Device, Enrollment, EnrollmentStatus

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def record(serial: str, **fields: Any) -> DEPDevice:
    base: dict[str, Any] = {
        "serial_number": serial,
        "model": "iPhone 15",
        "description": "IPHONE 15 BLACK 128GB",
        "color": "BLACK",
        "os": "iOS",
        "device_family": "iPhone",
        "profile_status": "empty",
        "device_assigned_date": "2026-03-01T08:00:00Z",
        "device_assigned_by": "it@example.com",
    }
    base.update(fields)
    return DEPDevice.model_validate({key: value for key, value in base.items() if value is not None})


def event_(serial: str, op_type: str, minute: int, **fields: Any) -> DEPDevice:
    op_date = f"2026-03-02T08:{minute:02d}:00Z"
    if op_type == "deleted":
        return DEPDevice.model_validate({"serial_number": serial, "op_type": "deleted", "op_date": op_date})
    return record(serial, op_type=op_type, op_date=op_date, **fields)


@pytest.fixture
def token_id(session: Session) -> int:
    token = DEPToken(name="acme")
    session.add(token)
    session.flush()
    return token.id


def devices(session: Session) -> dict[str, Device]:
    session.expire_all()
    return {device.serial_number: device for device in session.scalars(select(Device))}


def apply(session: Session, token_id: int, page: list[DEPDevice], mode: PageMode, generation: int = 1) -> PageCounts:
    return apply_device_page(session, token_id=token_id, devices=page, mode=mode, generation=generation, now=NOW)


def test_a_first_fetch_adds_every_device_as_assigned_at_apple_with_apples_record(
    session: Session, token_id: int
) -> None:
    counts = apply(session, token_id, [record("C1"), record("C2", asset_tag="A-2")], PageMode.refresh)
    assert counts == PageCounts(added=2)
    stored = devices(session)
    assert stored["C2"].apple_status == "assigned"
    assert stored["C2"].asset_tag == "A-2"
    assert stored["C2"].device_assigned_date == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert stored["C2"].apple_record["asset_tag"] == "A-2"
    assert stored["C1"].fetch_generation == 1 and stored["C1"].token_id == token_id


def test_refetching_counts_unchanged_devices_without_rewriting_them_but_stamps_the_generation(
    session: Session, token_id: int
) -> None:
    apply(session, token_id, [record("C1"), record("C2")], PageMode.refresh, generation=1)
    counts = apply(session, token_id, [record("C1"), record("C2", color="WHITE")], PageMode.refresh, generation=2)
    assert counts == PageCounts(modified=1, unchanged=1)
    stored = devices(session)
    assert stored["C2"].color == "WHITE"
    assert {device.fetch_generation for device in stored.values()} == {2}


def test_a_completed_fetch_marks_the_devices_it_did_not_return_as_removed(session: Session, token_id: int) -> None:
    apply(session, token_id, [record("C1"), record("C2"), record("C3")], PageMode.refresh, generation=1)
    apply(session, token_id, [record("C1"), record("C3")], PageMode.refresh, generation=2)
    assert mark_missing_removed(session, token_id=token_id, generation=2, now=NOW) == 1
    stored = devices(session)
    assert stored["C2"].apple_status == "removed" and stored["C2"].removed_at == NOW
    assert stored["C1"].apple_status == "assigned"
    # Marking again changes nothing: removed devices are not counted twice.
    assert mark_missing_removed(session, token_id=token_id, generation=2, now=NOW) == 0


def test_removal_marking_leaves_other_tokens_devices_alone(session: Session, token_id: int) -> None:
    other = DEPToken(name="other")
    session.add(other)
    session.flush()
    apply(session, other.id, [record("X1")], PageMode.refresh, generation=7)
    apply(session, token_id, [record("C1")], PageMode.refresh, generation=1)
    assert mark_missing_removed(session, token_id=token_id, generation=1, now=NOW) == 0
    assert devices(session)["X1"].apple_status == "assigned"


def test_an_add_only_fetch_adds_new_serials_and_leaves_known_ones_untouched(session: Session, token_id: int) -> None:
    apply(session, token_id, [record("C1")], PageMode.refresh)
    counts = apply(session, token_id, [record("C1", color="WHITE"), record("C9")], PageMode.add_only, generation=5)
    assert counts == PageCounts(added=1, unchanged=1)
    stored = devices(session)
    assert stored["C1"].color == "BLACK" and stored["C1"].fetch_generation == 1
    assert stored["C9"].apple_status == "assigned"


def test_an_add_only_fetch_brings_back_a_device_wrongly_marked_removed(session: Session, token_id: int) -> None:
    apply(session, token_id, [record("C1")], PageMode.refresh)
    apply(session, token_id, [event_("C1", "deleted", 1)], PageMode.changes)
    assert apply(session, token_id, [record("C1")], PageMode.add_only) == PageCounts(added=1)
    assert devices(session)["C1"].apple_status == "assigned"


def test_sync_events_add_modify_and_delete(session: Session, token_id: int) -> None:
    apply(session, token_id, [record("C1"), record("C2")], PageMode.refresh)
    page = [
        event_("C3", "added", 1),
        event_("C1", "modified", 2, profile_status="assigned", profile_uuid="A" * 32),
        event_("C2", "deleted", 3),
    ]
    assert apply(session, token_id, page, PageMode.changes) == PageCounts(added=1, modified=1, removed=1)
    stored = devices(session)
    assert stored["C1"].profile_status == "assigned" and stored["C1"].last_op_type == "modified"
    assert stored["C2"].apple_status == "removed" and stored["C2"].removed_at == NOW
    # A deleted event is sparse: the device keeps what Apple said about it before.
    assert stored["C2"].model == "iPhone 15" and stored["C2"].last_op_type == "deleted"
    assert stored["C3"].last_op_date == datetime(2026, 3, 2, 8, 1, tzinfo=UTC)


def test_duplicates_within_a_page_resolve_to_the_latest_op_date(session: Session, token_id: int) -> None:
    page = [
        event_("C1", "modified", 5, color="GOLD"),
        event_("C1", "added", 1, color="BLACK"),
        event_("C1", "modified", 3, color="WHITE"),
    ]
    assert apply(session, token_id, page, PageMode.changes) == PageCounts(added=1)
    assert devices(session)["C1"].color == "GOLD"


def test_events_older_than_the_stored_one_are_skipped_across_pages(session: Session, token_id: int) -> None:
    apply(session, token_id, [event_("C1", "modified", 5, color="GOLD")], PageMode.changes)
    counts = apply(session, token_id, [event_("C1", "deleted", 4)], PageMode.changes)
    assert counts == PageCounts(unchanged=1)
    assert devices(session)["C1"].apple_status == "assigned"


def test_modified_for_an_unknown_serial_is_an_addition(session: Session, token_id: int) -> None:
    assert apply(session, token_id, [event_("M1", "modified", 1)], PageMode.changes) == PageCounts(added=1)
    assert devices(session)["M1"].apple_status == "assigned"


def enroll(session: Session, serial: str) -> Enrollment:
    """An enrollment as the device half writes it, for the device with this serial."""
    device = devices(session)[serial]
    enrollment = Enrollment(
        udid=f"UDID-{serial}",
        serial_number=serial,
        device_id=device.id,
        status=EnrollmentStatus.enrolled,
        first_contact_at=NOW,
        enrolled_at=NOW,
        last_seen_at=NOW,
    )
    session.add(enrollment)
    session.flush()
    return enrollment


def enrollment_row(session: Session, udid: str) -> tuple[Any, ...]:
    session.expire_all()
    found = session.get_one(Enrollment, udid)
    return (found.status, found.device_id, found.enrolled_at, found.last_seen_at, found.unenrolled_at)


def test_added_for_a_removed_device_makes_it_assigned_at_apple_again(session: Session, token_id: int) -> None:
    apply(session, token_id, [record("C1")], PageMode.refresh)
    enroll(session, "C1")
    before = enrollment_row(session, "UDID-C1")
    apply(session, token_id, [event_("C1", "deleted", 1)], PageMode.changes)
    assert devices(session)["C1"].apple_status == "removed"
    assert apply(session, token_id, [event_("C1", "added", 2)], PageMode.changes) == PageCounts(added=1)
    stored = devices(session)["C1"]
    assert stored.apple_status == "assigned" and stored.removed_at is None
    assert enrollment_row(session, "UDID-C1") == before  # the enrollment is the device half's: never touched


def test_the_sync_never_writes_an_enrolled_devices_enrollment(session: Session, token_id: int) -> None:
    apply(session, token_id, [record("C1"), record("C2")], PageMode.refresh)
    enroll(session, "C1")
    before = enrollment_row(session, "UDID-C1")
    apply(session, token_id, [event_("C1", "modified", 2, profile_status="pushed")], PageMode.changes)
    assert enrollment_row(session, "UDID-C1") == before
    apply(session, token_id, [record("C2")], PageMode.refresh, generation=2)
    assert mark_missing_removed(session, token_id=token_id, generation=2, now=NOW) == 1
    assert devices(session)["C1"].apple_status == "removed"
    assert enrollment_row(session, "UDID-C1") == before


def test_a_deleted_event_for_an_unknown_serial_or_another_tokens_device_changes_nothing(
    session: Session, token_id: int
) -> None:
    other = DEPToken(name="other")
    session.add(other)
    session.flush()
    apply(session, other.id, [record("X1")], PageMode.refresh)
    counts = apply(session, token_id, [event_("NOPE", "deleted", 1), event_("X1", "deleted", 2)], PageMode.changes)
    assert counts == PageCounts(unchanged=1)
    stored = devices(session)
    assert set(stored) == {"X1"} and stored["X1"].apple_status == "assigned"


def test_a_device_moved_from_another_token_is_added_to_this_one(session: Session, token_id: int) -> None:
    other = DEPToken(name="other")
    session.add(other)
    session.flush()
    apply(session, other.id, [record("X1")], PageMode.refresh)
    assert apply(session, token_id, [event_("X1", "modified", 1)], PageMode.changes) == PageCounts(added=1)
    assert devices(session)["X1"].token_id == token_id


def test_hostile_records_are_skipped_or_clipped_without_failing_the_page(session: Session, token_id: int) -> None:
    page = [
        record("S" * 65),  # longer than any serial the column holds
        record(" padded "),
        record("C1", model="M" * 5000, color="é" * 300, description="d" * 1000),
    ]
    counts = apply(session, token_id, page, PageMode.refresh)
    assert counts == PageCounts(added=1, skipped=2)
    stored = devices(session)["C1"]
    assert stored.model is not None and len(stored.model) == 128
    assert stored.apple_record["model"] == "M" * 5000


def test_an_empty_page_writes_nothing(session: Session, token_id: int) -> None:
    assert apply(session, token_id, [], PageMode.changes) == PageCounts()


def test_latest_per_serial_keeps_first_seen_order() -> None:
    kept, skipped = latest_per_serial([event_("B", "added", 1), event_("A", "added", 2), event_("B", "deleted", 3)])
    assert [device.serial_number for device in kept] == ["B", "A"]
    assert kept[0].op_type == "deleted" and skipped == 0


def test_a_page_of_a_thousand_costs_a_constant_number_of_statements(session: Session, token_id: int) -> None:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    bind = session.get_bind()
    first = [record(f"C{n:05d}") for n in range(1000)]
    apply(session, token_id, first, PageMode.refresh, generation=1)
    second = [record(f"C{n:05d}", color="WHITE" if n % 2 else "BLACK") for n in range(1000)]
    second += [record(f"N{n:05d}") for n in range(200)]
    event.listen(bind, "before_cursor_execute", count)
    try:
        counts = apply(session, token_id, second, PageMode.refresh, generation=2)
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert counts == PageCounts(added=200, modified=500, unchanged=500)
    # SELECT, INSERT (batched), UPDATE of changed rows, UPDATE stamping unchanged rows.
    assert len(statements) <= 6, statements
    assert len(session.scalars(select(Device.id).where(Device.fetch_generation == 2)).all()) == 1200
