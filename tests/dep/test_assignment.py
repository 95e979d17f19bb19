"""The assignment queue against a scripted Apple: batches, per-serial outcomes, Apple's retry rules, claims."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep import assignment, assignment_runner, profiles
from pippin.dep.errors import DEPRequestRejected, DEPUnavailable, TermsNotSigned
from pippin.dep.profile_schemas import ProfileCreate, ProfileUpdate
from pippin.dep.wire import AssignProfileResult, DefineProfileResult, DEPDevice, DeviceDetail, Profile
from pippin.errors import InvalidInput, NotFound
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import (
    AssignmentStatus,
    AuditEvent,
    DEPProfile,
    DEPToken,
    Device,
    ProfileDefinition,
    utcnow,
)
from tests.actors import TEST_ACTOR
from tests.clocks import Clock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class ScriptedApple:
    """Defines profiles with fresh UUIDs and answers each serial with ``outcome(serial)``; remembers, as Apple
    does, the profile each serial holds, and shows it in device details (reference 3.4, 3.7)."""

    def __init__(self, outcome: Callable[[str], str] = lambda _serial: "SUCCESS", retry_after: int | None = None):
        self.outcome = outcome
        self.retry_after = retry_after
        self.defined: list[Profile] = []
        self.assigned: list[tuple[str, list[str]]] = []
        self.holds: dict[str, str] = {}
        self.looked_up: list[list[str]] = []
        self.errors: list[Exception] = []
        self.during_assign: Callable[[], None] | None = None
        self.after_assign: Callable[[], None] | None = None  # runs once Apple has acted, before it answers
        self.closed = 0

    def define_profile(self, profile: Profile) -> DefineProfileResult:
        self.defined.append(profile)
        return DefineProfileResult(profile_uuid=f"{len(self.defined):032X}")

    def assign_profile(self, *, profile_uuid: str, serials: Sequence[str]) -> AssignProfileResult:
        assert len(serials) <= 1000
        self.assigned.append((profile_uuid, list(serials)))
        if self.errors:
            raise self.errors.pop(0)
        if self.during_assign is not None:
            hook, self.during_assign = self.during_assign, None
            hook()
        outcomes = {serial: self.outcome(serial) for serial in serials}
        for serial, status in outcomes.items():
            if status in ("SUCCESS", "MISSING"):  # MISSING: Apple assigned it, but its answer leaves it out
                self.holds[serial] = profile_uuid
        if self.after_assign is not None:
            hook, self.after_assign = self.after_assign, None
            hook()
        devices = {serial: status for serial, status in outcomes.items() if status != "MISSING"}
        throttled = "THROTTLED" in devices.values()
        return AssignProfileResult(
            profile_uuid=profile_uuid, devices=devices, retry_after_seconds=self.retry_after if throttled else None
        )

    def device_details(self, serials: Sequence[str]) -> dict[str, DeviceDetail]:
        self.looked_up.append(list(serials))
        details: dict[str, DeviceDetail] = {}
        for serial in serials:
            if self.outcome(serial) == "NOT_ACCESSIBLE":
                details[serial] = DeviceDetail(serial_number=serial, response_status="NOT_ACCESSIBLE")
                continue
            held = self.holds.get(serial)
            record: dict[str, Any] = {"serial_number": serial, "profile_status": "assigned" if held else "empty"}
            if held:
                record |= {"profile_uuid": held, "profile_assign_time": "2026-03-02T09:00:00Z"}
            device = DEPDevice.model_validate(record)
            details[serial] = DeviceDetail(serial_number=serial, response_status="SUCCESS", device=device)
        return details

    def close(self) -> None:
        self.closed += 1

    def sent(self) -> list[str]:
        return [serial for _, serials in self.assigned for serial in serials]


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


def add_devices(factory: SessionFactory, token_id: int, count: int, prefix: str = "SER", **fields: Any) -> list[str]:
    serials = [f"{prefix}{index:06d}" for index in range(count)]
    rows = [
        {"serial_number": serial, "token_id": token_id, "profile_status": "empty", "apple_record": {}, **fields}
        for serial in serials
    ]
    with transaction(factory) as session:
        session.execute(insert(Device), rows)
    return serials


def devices(factory: SessionFactory) -> dict[str, Device]:
    with transaction(factory) as session:
        return {device.serial_number: device for device in session.scalars(select(Device))}


def queue(factory: SessionFactory, clock: Clock, profile: str = "Staff", **how: Any) -> Any:
    with transaction(factory) as session:
        return assignment.queue_assignment(session, profile_name=profile, now=clock(), actor=TEST_ACTOR, **how)


def run(factory: SessionFactory, settings: Settings, apple: ScriptedApple, clock: Clock, **kw: Any) -> Any:
    return assignment_runner.run_due_assignments(
        factory,
        settings=settings,
        box=SecretBox.from_settings(settings),
        open_client=lambda _t: apple,
        clock=clock,
        **kw,
    )


def test_devices_are_sent_in_batches_of_1000_and_never_twice(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    serials = add_devices(session_factory, token_id, 2500)
    queued = queue(session_factory, clock, all_unassigned=True)
    assert (queued.queued, queued.unchanged) == (2500, 0)
    apple = ScriptedApple()
    report = run(session_factory, settings, apple, clock)
    assert [len(batch) for _, batch in apple.assigned] == [1000, 1000, 500]
    assert sorted(apple.sent()) == serials
    assert (report.apple_calls, report.definitions, report.assigned, report.still_due) == (4, 1, 2500, 0)
    state = devices(session_factory)
    assert {d.assignment_status for d in state.values()} == {AssignmentStatus.assigned}
    assert {d.profile_uuid for d in state.values()} == {f"{1:032X}"}
    assert apple.closed == 1

    again = queue(session_factory, clock, all_unassigned=True)
    assert again.queued == 0
    again = queue(session_factory, clock, serials=serials[:10])
    assert (again.queued, again.unchanged) == (0, 10)
    clock.advance(days=3)
    report = run(session_factory, settings, apple, clock)
    assert (report.apple_calls, len(apple.assigned)) == (0, 3)


def test_each_serial_gets_apples_outcome_and_its_retry_rule(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 5)
    queue(session_factory, clock, token_name="acme")
    answers = {"SER000000": "SUCCESS", "SER000001": "FAILED", "SER000002": "THROTTLED", "SER000003": "NOT_ACCESSIBLE"}
    apple = ScriptedApple(lambda serial: answers.get(serial, "MISSING"), retry_after=120)
    report = run(session_factory, settings, apple, clock)
    assert (report.assigned, report.failed, report.throttled, report.not_accessible, report.unanswered) == (
        1,
        1,
        1,
        1,
        1,
    )
    state = devices(session_factory)
    assert state["SER000000"].assignment_status == "assigned" and state["SER000000"].assignment_retry_at is None
    assert state["SER000001"].assignment_status == "failed"
    assert state["SER000001"].assignment_retry_at == T0 + timedelta(hours=24)
    assert "24 hours" in (state["SER000001"].assignment_error or "")
    assert state["SER000002"].assignment_status == "throttled"
    assert state["SER000002"].assignment_retry_at == T0 + timedelta(seconds=120)
    assert state["SER000003"].assignment_status == "not_accessible"
    assert state["SER000004"].assignment_status == "pending"
    assert state["SER000004"].assignment_retry_at == T0 + timedelta(minutes=15)

    apple.outcome = lambda _serial: "SUCCESS"
    clock.advance(seconds=119)
    run(session_factory, settings, apple, clock)
    assert len(apple.assigned) == 1  # nothing is due before Apple's time
    clock.advance(seconds=2)
    run(session_factory, settings, apple, clock)
    assert apple.assigned[-1][1] == ["SER000002"]
    clock.advance(minutes=15)
    report = run(session_factory, settings, apple, clock)
    # Left out of Apple's answer: looked up at Apple, which holds the profile for it, so it is not sent again.
    assert apple.looked_up == [["SER000004"]] and apple.assigned[-1][1] == ["SER000002"]
    assert (report.confirmed, report.sent, report.apple_calls) == (1, 0, 1)
    clock.advance(hours=23)
    run(session_factory, settings, apple, clock)
    assert apple.assigned[-1][1] == ["SER000002"]  # the FAILED device waits the full 24 hours
    clock.advance(hours=1)
    run(session_factory, settings, apple, clock)
    assert apple.assigned[-1][1] == ["SER000001"]
    statuses = {serial: d.assignment_status for serial, d in devices(session_factory).items()}
    assert statuses == {
        "SER000000": "assigned",
        "SER000001": "assigned",
        "SER000002": "assigned",
        "SER000003": "not_accessible",
        "SER000004": "assigned",
    }
    assert len(apple.defined) == 1


def test_throttled_without_retry_after_waits_an_hour(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 1)
    queue(session_factory, clock, all_unassigned=True)
    run(session_factory, settings, ScriptedApple(lambda _s: "THROTTLED"), clock)
    assert devices(session_factory)["SER000000"].assignment_retry_at == T0 + timedelta(hours=1)


def test_an_unreachable_apple_leaves_the_batch_queued(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 15)
    queue(session_factory, clock, all_unassigned=True)
    apple = ScriptedApple()
    apple.errors.append(DEPUnavailable("Apple's DEP service could not be reached."))
    report = run(session_factory, settings, apple, clock, batch_size=10)
    assert len(apple.assigned) == 1 and report.assigned == 0 and report.errors
    state = devices(session_factory)
    assert {d.assignment_status for d in state.values()} == {"pending"}
    batch = set(apple.assigned[0][1])
    assert {d.assignment_retry_at for s, d in state.items() if s in batch} == {T0 + timedelta(minutes=5)}
    assert {d.assignment_retry_at for s, d in state.items() if s not in batch} == {None}
    clock.advance(minutes=5)
    report = run(session_factory, settings, apple, clock)
    assert report.assigned == 15
    assert {d.assignment_status for d in devices(session_factory).values()} == {"assigned"}


def test_a_refused_token_is_recorded_and_its_devices_wait(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 3)
    queue(session_factory, clock, all_unassigned=True)
    apple = ScriptedApple()
    apple.errors.append(TermsNotSigned())
    report = run(session_factory, settings, apple, clock)
    assert report.assigned == 0 and "terms" in report.errors[0]
    with transaction(session_factory) as session:
        assert session.get_one(DEPToken, token_id).status == "terms_not_signed"
    assert {d.assignment_status for d in devices(session_factory).values()} == {"pending"}


def test_a_profile_apple_forgot_is_defined_again_once(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 2)
    queue(session_factory, clock, all_unassigned=True)
    apple = ScriptedApple()
    run(session_factory, settings, apple, clock)
    add_devices(session_factory, token_id, 2, prefix="NEW")
    queue(session_factory, clock, all_unassigned=True)
    apple.errors.append(DEPRequestRejected("gone", apple_code="PROFILE_NOT_FOUND", status=400))
    report = run(session_factory, settings, apple, clock)
    # The new devices, and the two that held the forgotten definition, all go out with the new one.
    assert report.assigned == 4 and len(apple.defined) == 2 and report.still_due == 0
    with transaction(session_factory) as session:
        assert session.scalars(select(ProfileDefinition.profile_uuid)).all() == [f"{2:032X}"]
    assert {device.profile_uuid for device in devices(session_factory).values()} == {f"{2:032X}"}


def test_a_definition_made_with_another_enrollment_url_is_made_again_once_and_then_reused(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 2)
    queue(session_factory, clock, all_unassigned=True)
    apple = ScriptedApple()
    run(session_factory, settings, apple, clock)
    assert apple.defined[0].url.startswith("http://127.0.0.1:8000/mdm/enroll/")
    with transaction(session_factory) as session:  # as a definition from before URLs named their revision
        session.execute(update(ProfileDefinition).values(enrollment_url=None))
    add_devices(session_factory, token_id, 2, prefix="NEW")
    queue(session_factory, clock, all_unassigned=True)
    run(session_factory, settings, apple, clock)
    add_devices(session_factory, token_id, 2, prefix="MORE")
    queue(session_factory, clock, all_unassigned=True)
    run(session_factory, settings, apple, clock)
    assert len(apple.defined) == 2, "defined again once, then reused"
    with transaction(session_factory) as session:
        definition = session.scalars(select(ProfileDefinition)).one()
    assert definition.profile_uuid == f"{2:032X}" and definition.enrollment_url == apple.defined[1].url

    moved = settings.model_copy(update={"server_url": "https://mdm.example.com"})
    add_devices(session_factory, token_id, 1, prefix="LAST")
    queue(session_factory, clock, all_unassigned=True)
    run(session_factory, moved, apple, clock)
    assert len(apple.defined) == 3 and apple.defined[2].url.startswith("https://mdm.example.com/mdm/enroll/")
    # Devices Apple holds the replaced definition for were queued again with it, and go out with the new one.
    run(session_factory, moved, apple, clock)
    newest = f"{3:032X}"
    assert {device.profile_uuid for device in devices(session_factory).values()} == {newest}
    assert {device.assignment_status for device in devices(session_factory).values()} == {"assigned"}


def test_a_second_runner_never_sends_a_claimed_batch(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 10)
    queue(session_factory, clock, all_unassigned=True)
    other = ScriptedApple()
    apple = ScriptedApple()
    results: list[Any] = []
    apple.during_assign = lambda: results.append(run(session_factory, settings, other, clock))
    run(session_factory, settings, apple, clock)
    assert other.assigned == [] and results[0].sent == 0
    assert {d.assignment_status for d in devices(session_factory).values()} == {"assigned"}


def test_an_edit_defines_a_new_revision_and_reaches_every_device(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 30)
    queue(session_factory, clock, all_unassigned=True)
    apple = ScriptedApple()
    run(session_factory, settings, apple, clock)
    with transaction(session_factory) as session:
        profiles.update_profile(
            session, name="Staff", changes=ProfileUpdate(department="Sales"), settings=settings, actor=TEST_ACTOR
        )
    report = run(session_factory, settings, apple, clock)
    assert report.assigned == 30 and report.definitions == 1
    assert apple.defined[-1].department == "Sales"
    assert {d.profile_uuid for d in devices(session_factory).values()} == {f"{2:032X}"}
    with transaction(session_factory) as session:
        revisions = session.scalars(select(ProfileDefinition.revision).order_by(ProfileDefinition.revision)).all()
    assert revisions == [1, 2]


def test_queueing_refuses_unknown_serials_whole(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 2)
    add_devices(session_factory, token_id, 1, prefix="GONE", apple_status="removed")
    with pytest.raises(NotFound, match="2 serial number"):
        queue(session_factory, clock, serials=["SER000000", "ser000001", "GONE000000"])
    with pytest.raises(NotFound):
        queue(session_factory, clock, profile="Nope", serials=["SER000000"])
    with pytest.raises(NotFound):
        queue(session_factory, clock, token_name="nope")
    with pytest.raises(InvalidInput):
        queue(session_factory, clock)
    assert {d.assignment_status for d in devices(session_factory).values()} == {None}


def test_queueing_refuses_two_ways_of_naming_the_devices_at_once(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 2)
    for how in (
        {"all_unassigned": True, "token_name": "acme"},
        {"serials": ["SER000000"], "token_name": "acme"},
        {"serials": ["SER000000"], "all_unassigned": True},
    ):
        with pytest.raises(InvalidInput, match="not both"):
            queue(session_factory, clock, **how)
    assert {d.assignment_status for d in devices(session_factory).values()} == {None}
    with transaction(session_factory) as session:
        assert session.scalars(select(AuditEvent.action)).all() == ["profile.create"]


def test_a_new_profile_keeps_apples_cooldown(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 1)
    queue(session_factory, clock, all_unassigned=True)
    apple = ScriptedApple(lambda _s: "FAILED")
    run(session_factory, settings, apple, clock)
    with transaction(session_factory) as session:
        profiles.create_profile(session, data=ProfileCreate(name="Other"), settings=settings, actor=TEST_ACTOR)
    queued = queue(session_factory, clock, profile="Other", serials=["SER000000"])
    assert (queued.queued, queued.cooling_down) == (1, 1)
    device = devices(session_factory)["SER000000"]
    assert (device.assignment_status, device.assignment_retry_at) == ("failed", T0 + timedelta(hours=24))
    apple.outcome = lambda _s: "SUCCESS"
    clock.advance(hours=24)
    run(session_factory, settings, apple, clock)
    assert apple.defined[-1].profile_name == "Other"
    assert devices(session_factory)["SER000000"].assignment_status == "assigned"


def test_the_default_profile_goes_to_devices_without_one(
    session_factory: SessionFactory, settings: Settings, token_id: int, clock: Clock
) -> None:
    add_devices(session_factory, token_id, 2, prefix="NEW")
    add_devices(session_factory, token_id, 1, prefix="REM", profile_status="removed")
    add_devices(session_factory, token_id, 1, prefix="ELSE", profile_status="pushed", profile_uuid="A" * 32)
    add_devices(session_factory, token_id, 1, prefix="GONE", apple_status="removed")
    with transaction(session_factory) as session:
        assert assignment.assign_default_profiles(session, token_id=token_id, now=clock()) == 0  # no default yet
        profile = session.scalars(select(DEPProfile)).one()
        profiles.set_default_profile(
            session, token_name=session.get_one(DEPToken, token_id).name, profile_name=profile.name, actor=TEST_ACTOR
        )
        assert assignment.assign_default_profiles(session, token_id=token_id, now=clock()) == 3
        assert assignment.assign_default_profiles(session, token_id=token_id, now=clock()) == 0
    state = devices(session_factory)
    assert {s for s, d in state.items() if d.assignment_status == "pending"} == {"NEW000000", "NEW000001", "REM000000"}
    assert state["ELSE000000"].assigned_profile_id is None  # a profile from elsewhere is left alone
    run(session_factory, settings, ScriptedApple(), clock)
    with transaction(session_factory) as session:
        # What the sync's page writer leaves when Apple shows the profile removed (test_sync_profile_dropped.py).
        session.execute(
            Device.__table__.update()
            .where(Device.serial_number == "NEW000000")
            .values(
                profile_status="removed",
                assigned_profile_id=None,
                assigned_revision=None,
                assignment_status=None,
                last_synced_at=clock(),
            )
        )
        assert assignment.assign_default_profiles(session, token_id=token_id, now=clock()) == 1


def test_after_the_first_look_the_default_step_reads_only_what_syncs_wrote_since(
    session_factory: SessionFactory, token_id: int
) -> None:
    """The step runs after every sync: its cost must follow the sync's changes, not the size of the fleet."""
    add_devices(session_factory, token_id, 3, prefix="OLD", last_synced_at=utcnow() - timedelta(hours=1))
    with transaction(session_factory) as session:
        profile = session.scalars(select(DEPProfile)).one()
        profiles.set_default_profile(
            session, token_name=session.get_one(DEPToken, token_id).name, profile_name=profile.name, actor=TEST_ACTOR
        )
        now = utcnow()
        assert assignment.assign_default_profiles(session, token_id=token_id, now=now) == 3  # the one whole look
    # A device left without a profile by something other than a sync is not looked at again...
    add_devices(session_factory, token_id, 1, prefix="STALE", last_synced_at=now - timedelta(minutes=5))
    # ...while one a later sync wrote is.
    add_devices(session_factory, token_id, 1, prefix="SYNCED", last_synced_at=now + timedelta(minutes=30))
    with transaction(session_factory) as session:
        assert assignment.assign_default_profiles(session, token_id=token_id, now=now + timedelta(minutes=31)) == 1
    state = devices(session_factory)
    assert state["SYNCED000000"].assignment_status == "pending"
    assert state["STALE000000"].assignment_status is None
    # Setting the default again looks at the whole token once more.
    with transaction(session_factory) as session:
        profile = session.scalars(select(DEPProfile)).one()
        profiles.set_default_profile(
            session, token_name=session.get_one(DEPToken, token_id).name, profile_name=profile.name, actor=TEST_ACTOR
        )
        assert assignment.assign_default_profiles(session, token_id=token_id, now=utcnow() + timedelta(hours=1)) == 1


def test_batch_size_is_bounded(session_factory: SessionFactory, settings: Settings, clock: Clock) -> None:
    with pytest.raises(InvalidInput):
        run(session_factory, settings, ScriptedApple(), clock, batch_size=1001)
