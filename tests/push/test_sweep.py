"""The sweep: enrolled devices silent for a day are pushed again, once a period, reading only the due rows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from pippin.config import Settings
from pippin.push.sweep import sweep_silent_devices, watch_enrollment
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import Enrollment, EnrollmentStatus, PushDelivery
from tests.clocks import Clock
from tests.push.conftest import T0, enroll


def watch(session_factory: SessionFactory, udids: list[str], settings: Settings, clock: Clock) -> None:
    with transaction(session_factory) as session:
        for udid in udids:
            watch_enrollment(session, udid=udid, settings=settings, now=clock())


def rows(session_factory: SessionFactory) -> dict[str, PushDelivery]:
    with read_transaction(session_factory) as session:
        return {row.udid: row for row in session.scalars(select(PushDelivery))}


def test_a_silent_device_is_pushed_once_a_period_and_a_seen_one_is_not(
    session_factory: SessionFactory, push_settings: Settings, clock: Clock
) -> None:
    silent, chatty = enroll(session_factory, 2, last_seen_at=T0)
    watch(session_factory, [silent, chatty], push_settings, clock)
    assert sweep_silent_devices(session_factory, settings=push_settings, clock=clock).looked_at == 0

    clock.advance(hours=23)
    with transaction(session_factory) as session:
        seen = session.get(Enrollment, chatty)
        assert seen is not None
        seen.last_seen_at = clock()
    clock.advance(hours=1, seconds=1)
    report = sweep_silent_devices(session_factory, settings=push_settings, clock=clock)
    assert (report.looked_at, report.pushed) == (2, 1)
    state = rows(session_factory)
    assert state[silent].wanted_at == clock() and state[silent].next_attempt_at == clock()
    assert state[silent].next_sweep_at == clock() + push_settings.push_silent_after
    assert state[chatty].wanted_at is None
    assert state[chatty].next_sweep_at == T0 + timedelta(hours=23) + push_settings.push_silent_after

    # Right after, nothing is due: a pass reads only due rows, so its cost follows the due work, not the fleet.
    assert sweep_silent_devices(session_factory, settings=push_settings, clock=clock).looked_at == 0


def test_a_device_with_a_push_pending_gets_no_second_one(
    session_factory: SessionFactory, push_settings: Settings, clock: Clock
) -> None:
    [udid] = enroll(session_factory, 1)
    watch(session_factory, [udid], push_settings, clock)
    clock.advance(days=1)
    sweep_silent_devices(session_factory, settings=push_settings, clock=clock)
    first = rows(session_factory)[udid].wanted_at
    clock.advance(days=1)
    report = sweep_silent_devices(session_factory, settings=push_settings, clock=clock)
    assert (report.looked_at, report.pushed) == (1, 0)
    assert rows(session_factory)[udid].wanted_at == first


def test_devices_no_longer_enrolled_or_refused_stop_being_watched(
    session_factory: SessionFactory, push_settings: Settings, clock: Clock
) -> None:
    gone, refused = enroll(session_factory, 2)
    watch(session_factory, [gone, refused], push_settings, clock)
    with transaction(session_factory) as session:
        enrollment = session.get(Enrollment, gone)
        assert enrollment is not None
        enrollment.status = EnrollmentStatus.unenrolled
        row = session.get(PushDelivery, refused)
        enrolled = session.get(Enrollment, refused)
        assert row is not None and enrolled is not None
        row.refused_token = enrolled.push_token
    clock.advance(days=2)
    report = sweep_silent_devices(session_factory, settings=push_settings, clock=clock)
    assert (report.looked_at, report.pushed, report.unwatched) == (2, 0, 2)
    assert {row.next_sweep_at for row in rows(session_factory).values()} == {None}


def test_the_sweep_walks_many_due_rows_in_batches(
    session_factory: SessionFactory, push_settings: Settings, clock: Clock
) -> None:
    udids = enroll(session_factory, 25)
    watch(session_factory, udids, push_settings, clock)
    clock.advance(days=1)
    report = sweep_silent_devices(session_factory, settings=push_settings, clock=clock, batch=4)
    assert (report.looked_at, report.pushed) == (25, 25)


def test_watching_twice_keeps_one_row_and_its_time(
    session_factory: SessionFactory, push_settings: Settings, clock: Clock
) -> None:
    [udid] = enroll(session_factory, 1)
    watch(session_factory, [udid], push_settings, clock)
    clock.advance(hours=5)
    watch(session_factory, [udid], push_settings, clock)
    assert rows(session_factory)[udid].next_sweep_at == T0 + push_settings.push_silent_after
