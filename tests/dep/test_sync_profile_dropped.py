"""The page writer keeps Pippin's view of each device's profile equal to Apple's (reference section 4).

A device Pippin holds as ``assigned`` whose record shows no profile, or another profile UUID than the definition
Pippin gave under this token, loses the assignment, so the default profile step can queue it again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session

from pippin.dep.devices import PageCounts, PageMode, apply_device_page
from pippin.dep.wire import DEPDevice
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import AssignmentStatus, DEPProfile, DEPToken, Device, ProfileDefinition

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GIVEN_UUID = "A" * 32


def record(serial: str, **fields: Any) -> DEPDevice:
    return DEPDevice.model_validate({"serial_number": serial, "model": "iPhone 15", **fields})


@pytest.fixture
def world(session: Session) -> dict[str, int]:
    token, other = DEPToken(name="acme"), DEPToken(name="other")
    profile = DEPProfile(name="Staff", revision=2)
    session.add_all([token, other, profile])
    session.flush()
    session.add(ProfileDefinition(profile_id=profile.id, token_id=token.id, revision=2, profile_uuid=GIVEN_UUID))
    session.flush()
    return {"token": token.id, "other": other.id, "profile": profile.id}


def given(session: Session, world: dict[str, int], serial: str, status: AssignmentStatus, **apple: Any) -> None:
    """A device of ``acme`` that Pippin gave revision 2 of Staff, Apple's record as ``apple`` says."""
    session.add(
        Device(
            serial_number=serial,
            token_id=world["token"],
            model="iPhone 15",
            profile_status=apple.get("profile_status", "assigned"),
            profile_uuid=apple.get("profile_uuid", GIVEN_UUID),
            apple_record={"serial_number": serial, "model": "iPhone 15", **apple},
            assigned_profile_id=world["profile"],
            assigned_revision=2,
            assignment_status=status,
            assignment_updated_at=NOW,
            fetch_generation=1,
        )
    )
    session.flush()


def apply(session: Session, token_id: int, page: list[DEPDevice], mode: PageMode = PageMode.refresh) -> PageCounts:
    return apply_device_page(session, token_id=token_id, devices=page, mode=mode, generation=2, now=NOW)


def stored(session: Session, serial: str) -> Device:
    session.expire_all()
    return session.scalars(select(Device).where(Device.serial_number == serial)).one()


@pytest.mark.parametrize("dropped", [{"profile_status": "empty"}, {"profile_status": "removed"}, {}])
def test_a_profile_apple_dropped_clears_pippins_assignment(
    session: Session, world: dict[str, int], dropped: dict[str, Any]
) -> None:
    given(session, world, "C1", AssignmentStatus.assigned)
    assert apply(session, world["token"], [record("C1", **dropped)]) == PageCounts(modified=1)
    device = stored(session, "C1")
    assert (device.assigned_profile_id, device.assigned_revision, device.assignment_status) == (None, None, None)
    assert device.assignment_error is not None and "no longer holds" in device.assignment_error
    assert device.last_synced_at == NOW  # so the default profile step, reading from its watermark, sees it


def test_another_profile_uuid_at_apple_clears_the_assignment(session: Session, world: dict[str, int]) -> None:
    given(session, world, "C1", AssignmentStatus.assigned)
    apply(session, world["token"], [record("C1", profile_status="pushed", profile_uuid="B" * 32)])
    assert stored(session, "C1").assignment_status is None


def test_the_profile_pippin_gave_keeps_the_assignment(session: Session, world: dict[str, int]) -> None:
    given(session, world, "C1", AssignmentStatus.assigned)
    apply(session, world["token"], [record("C1", profile_status="pushed", profile_uuid=GIVEN_UUID)])
    device = stored(session, "C1")
    assert (device.assigned_profile_id, device.assignment_status) == (world["profile"], "assigned")


def test_an_assignment_still_on_its_way_is_left_alone(session: Session, world: dict[str, int]) -> None:
    for serial, status in (("P1", AssignmentStatus.pending), ("F1", AssignmentStatus.failed)):
        given(session, world, serial, status, profile_status="empty", profile_uuid=None)
    apply(session, world["token"], [record("P1", profile_status="empty"), record("F1", profile_status="empty")])
    assert [stored(session, serial).assignment_status for serial in ("P1", "F1")] == ["pending", "failed"]


def test_a_stale_assignment_is_corrected_even_when_apples_record_did_not_change(
    session: Session, world: dict[str, int]
) -> None:
    # Written before this rule existed: Pippin says assigned, Apple's record (unchanged since) says empty.
    given(session, world, "C1", AssignmentStatus.assigned, profile_status="empty", profile_uuid=None)
    assert apply(session, world["token"], [record("C1", profile_status="empty")]) == PageCounts(modified=1)
    assert stored(session, "C1").assignment_status is None


def test_a_device_moved_to_another_token_loses_the_first_tokens_profile(
    session: Session, world: dict[str, int]
) -> None:
    given(session, world, "C1", AssignmentStatus.assigned)
    # Under "other", Staff revision 2 was never defined: the UUID Apple shows is not one Pippin gave there.
    changes = [record("C1", op_type="modified", op_date="2026-03-02T08:00:00Z", profile_status="empty")]
    assert apply(session, world["other"], changes, PageMode.changes) == PageCounts(added=1)
    device = stored(session, "C1")
    assert device.token_id == world["other"] and device.assignment_status is None


def test_the_page_writer_never_undoes_an_assignment_written_while_the_page_was_applied(
    session_factory: SessionFactory, engine: Engine
) -> None:
    """The assignment runner writes a device's assignment from its own transaction while a sync runs: a claim
    taken, or a device queued again. The page writer must leave what it finds then, not what it read."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite takes the write lock before the page is read: no writer can come in between")
    with transaction(session_factory) as session:
        token = DEPToken(name="acme")
        profile = DEPProfile(name="Staff", revision=2)
        session.add_all([token, profile])
        session.flush()
        session.add(ProfileDefinition(profile_id=profile.id, token_id=token.id, revision=2, profile_uuid=GIVEN_UUID))
        common = {"token_id": token.id, "assigned_profile_id": profile.id, "assigned_revision": 2, "model": "iPhone"}
        session.add_all(
            [
                Device(serial_number="QUEUED", profile_status="empty", assignment_status="pending", **common),
                Device(
                    serial_number="DROPPED",
                    profile_status="assigned",
                    profile_uuid=GIVEN_UUID,
                    assignment_status="assigned",
                    **common,
                ),
            ]
        )
        token_id = token.id
    lease = NOW + timedelta(minutes=30)

    done: list[bool] = []

    def runner_writes_meanwhile(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if done or not statement.lstrip().upper().startswith("UPDATE DEVICES"):
            return
        done.append(True)
        with engine.begin() as other:  # another transaction, committed before the page's writes
            other.execute(
                update(Device)
                .where(Device.serial_number == "QUEUED")
                .values(assignment_claim="C" * 32, assignment_retry_at=lease)
            )
            other.execute(update(Device).where(Device.serial_number == "DROPPED").values(assignment_status="pending"))

    page = [record("QUEUED", model="iPhone 16", profile_status="empty"), record("DROPPED", profile_status="empty")]
    event.listen(engine, "before_cursor_execute", runner_writes_meanwhile)
    try:
        with transaction(session_factory) as session:
            apply(session, token_id, page)
    finally:
        event.remove(engine, "before_cursor_execute", runner_writes_meanwhile)
    assert done, "the runner's writes came in before the page's"
    with transaction(session_factory) as session:
        queued = stored(session, "QUEUED")
        dropped = stored(session, "DROPPED")
        assert queued.model == "iPhone 16", "Apple's side is written"
        assert (queued.assignment_claim, queued.assignment_retry_at) == ("C" * 32, lease), "the claim is kept"
        # Queued again meanwhile: no longer the assignment Apple dropped, so it stays queued with its profile.
        assert (dropped.assignment_status, dropped.assigned_revision) == ("pending", 2)
        assert dropped.profile_status == "empty"
