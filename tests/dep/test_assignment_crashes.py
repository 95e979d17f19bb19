"""A runner killed at every step of a batch: after its lease, no device Apple holds the profile for is sent again.

A kill -9 runs no handler, so a crash is injected as an exception no part of Pippin catches (``Killed``, a
``BaseException``): what it leaves is what the committed transactions left, as after a killed process. The
lease is counted on the injected clock, which the tests move on; ``tests/e2e/test_assignment_killed.py`` kills
a real process.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from pippin.config import Settings
from pippin.dep import profiles
from pippin.dep.assignment_claims import CLAIM_LEASE
from pippin.dep.assignment_runner import BATCH_SIZE
from pippin.dep.errors import DEPUnavailable, TermsNotSigned
from pippin.dep.profile_schemas import ProfileCreate, ProfileUpdate
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import DEPToken, Device
from tests.actors import TEST_ACTOR
from tests.clocks import Clock
from tests.dep.test_assignment import T0, ScriptedApple, add_devices, devices, queue, run


class Killed(BaseException):
    """The process died here: nothing after this point runs, no handler sees it."""


class Apple(ScriptedApple):
    """A scripted Apple that counts, per serial, the assignments it acted on; ``kill_after_call`` makes the
    process die once Apple has acted on that call (counted from 1), before its answer is stored."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.acted: Counter[str] = Counter()
        self.kill_after_call: int | None = None

    def assign_profile(self, *, profile_uuid: str, serials: Any) -> Any:
        if self.kill_after_call == len(self.assigned) + 1:
            self.after_assign = die
        before = dict(self.holds)
        try:
            return super().assign_profile(profile_uuid=profile_uuid, serials=serials)
        finally:
            self.acted.update(serial for serial in serials if self.holds.get(serial) != before.get(serial))


def die() -> None:
    raise Killed


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def token_id(session_factory: SessionFactory, settings: Settings) -> int:
    with transaction(session_factory) as session:
        token = DEPToken(name="acme", status="ok")
        session.add(token)
        profiles.create_profile(
            session, data=ProfileCreate(name="Staff", supervised=True), settings=settings, actor=TEST_ACTOR
        )
        session.flush()
        return token.id


def statuses(factory: SessionFactory) -> Counter[str | None]:
    return Counter(device.assignment_status for device in devices(factory).values())


def test_killed_before_the_send_reached_apple_the_batch_waits_its_lease_and_goes_out_once(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    serials = add_devices(session_factory, token_id, 2500)
    queue(session_factory, clock, all_unassigned=True)
    apple = Apple()
    apple.errors.append(Killed())  # the claim is committed; the process dies before Apple acts
    with pytest.raises(Killed):
        run(session_factory, settings, apple, clock)
    first = apple.assigned[0][1]
    assert len(first) == BATCH_SIZE and not apple.holds

    # Only the batch in flight waits: the rest goes out at once, that batch not before its lease ends.
    report = run(session_factory, settings, apple, clock)
    assert report.sent == 1500 and set(apple.holds) == set(serials) - set(first)
    clock.advance(seconds=CLAIM_LEASE.total_seconds() - 1)
    assert run(session_factory, settings, apple, clock).sent == 0
    clock.advance(seconds=1)
    report = run(session_factory, settings, apple, clock)
    # Looked up first (one call for the batch): Apple holds nothing, so all of it is sent, once.
    assert apple.looked_up == [first] and (report.sent, report.confirmed, report.apple_calls) == (1000, 0, 2)
    assert set(apple.acted) == set(serials) and set(apple.acted.values()) == {1}
    assert statuses(session_factory) == {"assigned": 2500}


def test_killed_after_apple_acted_before_its_answer_was_stored_nothing_is_sent_again(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    serials = add_devices(session_factory, token_id, 1000)
    queue(session_factory, clock, all_unassigned=True)
    apple = Apple()
    apple.after_assign = die  # Apple assigned the batch; its answer never reaches the database
    with pytest.raises(Killed):
        run(session_factory, settings, apple, clock)
    assert set(apple.holds) == set(serials)
    assert statuses(session_factory) == {"pending": 1000}

    clock.advance(seconds=CLAIM_LEASE.total_seconds())
    report = run(session_factory, settings, apple, clock)
    assert apple.looked_up == [serials] and len(apple.assigned) == 1
    assert (report.confirmed, report.sent, report.apple_calls) == (1000, 0, 1)
    state = devices(session_factory)
    assert {d.assignment_status for d in state.values()} == {"assigned"}
    assert {d.profile_uuid for d in state.values()} == {apple.assigned[0][0]}
    assert {d.assignment_claim for d in state.values()} == {None}
    assert set(apple.acted.values()) == {1}
    clock.advance(days=2)
    assert run(session_factory, settings, apple, clock).apple_calls == 0


def test_killed_while_storing_the_answer_only_devices_apple_refused_are_sent_again(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock, engine: Engine
) -> None:
    serials = add_devices(session_factory, token_id, 30)
    queue(session_factory, clock, all_unassigned=True)
    refused = {serial: ("FAILED" if index % 3 == 1 else "THROTTLED") for index, serial in enumerate(serials[:10])}
    apple = Apple(outcome=lambda serial: refused.get(serial, "SUCCESS"), retry_after=60)
    writes = {"armed": False, "devices": 0}

    def arm() -> None:
        writes["armed"] = True

    def crash_on_second_outcome(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The answer's transaction has written one outcome group to the devices when the process dies.
        if writes["armed"] and statement.lstrip().upper().startswith("UPDATE DEVICES"):
            writes["devices"] += 1
            if writes["devices"] == 2:
                raise Killed

    apple.after_assign = arm
    event.listen(engine, "before_cursor_execute", crash_on_second_outcome)
    try:
        with pytest.raises(Killed):
            run(session_factory, settings, apple, clock)
    finally:
        event.remove(engine, "before_cursor_execute", crash_on_second_outcome)
    assert statuses(session_factory) == {"pending": 30}, "the answer is stored whole or not at all"

    clock.advance(seconds=CLAIM_LEASE.total_seconds())
    apple.outcome = lambda _serial: "SUCCESS"
    report = run(session_factory, settings, apple, clock)
    # Apple's FAILED and THROTTLED answers were lost with the transaction: Apple does not hold the profile for
    # those devices, so they alone are sent again (Apple would refuse a FAILED one again, at no harm).
    assert apple.looked_up == [serials] and apple.assigned[-1][1] == sorted(refused)
    assert (report.confirmed, report.sent, report.assigned) == (20, 10, 10)
    assert set(apple.acted) == set(serials) and set(apple.acted.values()) == {1}
    assert statuses(session_factory) == {"assigned": 30}


def test_killed_in_the_middle_of_a_run_only_the_batch_in_flight_is_looked_up(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    serials = add_devices(session_factory, token_id, 2500)
    queue(session_factory, clock, all_unassigned=True)
    apple = Apple()
    apple.kill_after_call = 2
    with pytest.raises(Killed):
        run(session_factory, settings, apple, clock)
    first, second = apple.assigned[0][1], apple.assigned[1][1]
    assert statuses(session_factory) == {"assigned": 1000, "pending": 1500}

    clock.advance(seconds=CLAIM_LEASE.total_seconds())
    report = run(session_factory, settings, apple, clock)
    assert apple.looked_up == [second], "the stored batch is not looked up; the untouched one is just sent"
    third = apple.assigned[-1][1]
    assert (report.confirmed, report.sent) == (1000, 500) and set(third) == set(serials) - set(first) - set(second)
    assert set(apple.acted.values()) == {1} and statuses(session_factory) == {"assigned": 2500}


def test_killed_while_looking_up_the_next_runner_looks_up_again_and_still_sends_nothing(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    serials = add_devices(session_factory, token_id, 5)
    queue(session_factory, clock, all_unassigned=True)
    apple = Apple()
    apple.after_assign = die
    with pytest.raises(Killed):
        run(session_factory, settings, apple, clock)
    clock.advance(seconds=CLAIM_LEASE.total_seconds())
    looked_up = apple.device_details

    def dies_after_apple_answered(found: Any) -> Any:
        looked_up(found)
        raise Killed

    apple.device_details = dies_after_apple_answered  # type: ignore[method-assign]
    with pytest.raises(Killed):
        run(session_factory, settings, apple, clock)
    apple.device_details = looked_up  # type: ignore[method-assign]
    assert run(session_factory, settings, apple, clock).sent == 0, "the new lease holds"
    clock.advance(seconds=CLAIM_LEASE.total_seconds())
    report = run(session_factory, settings, apple, clock)
    assert apple.looked_up == [serials, serials] and (report.confirmed, report.sent) == (5, 0)
    assert len(apple.assigned) == 1 and statuses(session_factory) == {"assigned": 5}


def test_a_call_that_may_have_reached_apple_is_looked_up_before_the_retry_and_a_refused_one_is_not(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 4)
    queue(session_factory, clock, all_unassigned=True)
    apple = Apple()
    apple.errors.append(DEPUnavailable("Apple's DEP service could not be reached."))
    run(session_factory, settings, apple, clock)
    with transaction(session_factory) as session:
        assert None not in set(session.scalars(select(Device.assignment_claim)))
    clock.advance(minutes=5)
    report = run(session_factory, settings, apple, clock)
    assert len(apple.looked_up) == 1 and report.assigned == 4

    add_devices(session_factory, token_id, 2, prefix="NEW")
    queue(session_factory, clock, all_unassigned=True)
    apple.errors.append(TermsNotSigned())  # Apple refused the call: it assigned nothing
    run(session_factory, settings, apple, clock)
    with transaction(session_factory) as session:
        session.get_one(DEPToken, token_id).status = "ok"
        assert set(session.scalars(select(Device.assignment_claim))) == {None}
    clock.advance(minutes=5)
    assert run(session_factory, settings, apple, clock).assigned == 2 and len(apple.looked_up) == 1


def test_a_runner_that_outlived_its_lease_never_overwrites_the_runner_that_took_its_batch_over(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    """The case the promise leaves out: a call to Apple that outlasts the lease is sent twice."""
    serials = add_devices(session_factory, token_id, 3)
    queue(session_factory, clock, all_unassigned=True)
    apple = Apple()
    reports: list[Any] = []

    def lease_runs_out_meanwhile() -> None:
        clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
        reports.append(run(session_factory, settings, apple, clock))
        apple.outcome = lambda _serial: "FAILED"  # what the slow call is answered, too late

    apple.during_assign = lease_runs_out_meanwhile  # before the slow call reaches Apple
    late = run(session_factory, settings, apple, clock)
    assert apple.looked_up == [serials] and reports[0].assigned == 3
    assert Counter(apple.sent()) == dict.fromkeys(serials, 2), "sent twice: the slow call outlasted its lease"
    # The slow runner's answer came after another runner had taken the batch over: it writes nothing.
    assert late.failed == 3 and statuses(session_factory) == {"assigned": 3}
    assert {d.assignment_error for d in devices(session_factory).values()} == {None}


def test_a_device_queued_for_a_new_revision_after_a_crash_is_sent_it_at_once_without_a_look_up(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 3)
    queue(session_factory, clock, all_unassigned=True)
    apple = Apple()
    apple.after_assign = die
    with pytest.raises(Killed):
        run(session_factory, settings, apple, clock)
    with transaction(session_factory) as session:  # the new revision was never sent: nothing to look up
        profiles.update_profile(
            session, name="Staff", changes=ProfileUpdate(department="Sales"), settings=settings, actor=TEST_ACTOR
        )
    report = run(session_factory, settings, apple, clock)
    assert apple.looked_up == [] and (report.sent, report.assigned) == (3, 3)
    assert apple.assigned[-1][0] == f"{2:032X}" and statuses(session_factory) == {"assigned": 3}
