"""The derived state: its rules by name, and its SQL form agreeing with the Python one for every combination."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.inventory.devices import count_by_state, count_cannot_enroll
from pippin.inventory.state import (
    DeviceState,
    cannot_enroll,
    cannot_enroll_expression,
    derive_state,
    state_expression,
)
from pippin.store.models import AppleStatus, DEPProfile, DEPToken, Device, Enrollment, EnrollmentStatus
from tests.inventory.conftest import NOW


def state(
    apple: AppleStatus | None = AppleStatus.assigned,
    assigned: tuple[int, int] | None = None,
    enrollment: EnrollmentStatus | None = None,
    enrolled: tuple[int, int] | None = None,
) -> DeviceState:
    return derive_state(
        apple_status=apple,
        assigned_profile_id=assigned[0] if assigned else None,
        assigned_revision=assigned[1] if assigned else None,
        enrollment_status=enrollment,
        enrolled_profile_id=enrolled[0] if enrolled else None,
        enrolled_revision=enrolled[1] if enrolled else None,
    )


def test_a_device_assigned_at_apple_and_never_enrolled_is_not_contacted() -> None:
    assert state() is DeviceState.not_contacted
    assert state(assigned=(1, 1)) is DeviceState.not_contacted


def test_an_enrolled_device_stays_enrolled_when_apple_removes_it() -> None:
    assert state(enrollment=EnrollmentStatus.enrolled) is DeviceState.enrolled
    assert state(AppleStatus.removed, (1, 2), EnrollmentStatus.enrolled, (1, 1)) is DeviceState.enrolled


def test_enrolled_with_another_revision_than_the_one_assigned_is_pending_reset() -> None:
    assert state(assigned=(1, 2), enrollment=EnrollmentStatus.enrolled, enrolled=(1, 1)) is DeviceState.pending_reset
    assert state(assigned=(2, 1), enrollment=EnrollmentStatus.enrolled, enrolled=(1, 1)) is DeviceState.pending_reset
    assert state(assigned=(1, 1), enrollment=EnrollmentStatus.enrolled, enrolled=None) is DeviceState.pending_reset
    assert state(assigned=(1, 1), enrollment=EnrollmentStatus.enrolled, enrolled=(1, 1)) is DeviceState.enrolled


def test_removed_at_apple_outranks_a_finished_or_failed_enrollment() -> None:
    assert state(AppleStatus.removed) is DeviceState.removed
    assert state(AppleStatus.removed, enrollment=EnrollmentStatus.unenrolled) is DeviceState.removed
    assert state(enrollment=EnrollmentStatus.unenrolled) is DeviceState.unenrolled
    assert state(enrollment=EnrollmentStatus.failed) is DeviceState.failed


def test_a_manual_enrollment_has_a_state_without_a_dep_record() -> None:
    assert state(None, enrollment=EnrollmentStatus.enrolled, enrolled=(1, 1)) is DeviceState.enrolled
    assert state(None, enrollment=EnrollmentStatus.failed) is DeviceState.failed


def test_cannot_enroll_means_assigned_not_enrolled_and_no_profile_at_apple() -> None:
    assert cannot_enroll(apple_status=AppleStatus.assigned, profile_status="empty", enrollment_status=None)
    assert cannot_enroll(apple_status=AppleStatus.assigned, profile_status=None, enrollment_status="unenrolled")
    assert not cannot_enroll(apple_status=AppleStatus.assigned, profile_status="pushed", enrollment_status=None)
    assert not cannot_enroll(apple_status=AppleStatus.removed, profile_status="empty", enrollment_status=None)
    assert not cannot_enroll(apple_status=AppleStatus.assigned, profile_status="empty", enrollment_status="enrolled")


PROFILES = [None, (1, 1), (1, 2), (2, 1)]
COMBINATIONS = list(
    itertools.product(
        list(AppleStatus), PROFILES, [None, *EnrollmentStatus], PROFILES, [None, "empty", "assigned", "removed"]
    )
)


def test_the_sql_form_agrees_with_the_python_one_for_every_combination(session: Session) -> None:
    token = DEPToken(name="acme")
    first, second = DEPProfile(name="One", revision=2), DEPProfile(name="Two")
    session.add_all([token, first, second])
    session.flush()
    ids = {1: first.id, 2: second.id}
    expected: dict[str, tuple[DeviceState, bool]] = {}
    for number, (apple, assigned, enrollment, enrolled, profile_status) in enumerate(COMBINATIONS):
        serial = f"S{number:05d}"
        device = Device(
            serial_number=serial,
            token_id=token.id,
            apple_status=apple,
            profile_status=profile_status,
            assigned_profile_id=ids[assigned[0]] if assigned else None,
            assigned_revision=assigned[1] if assigned else None,
            first_seen_at=NOW,
            last_synced_at=NOW,
            apple_record={},
        )
        session.add(device)
        session.flush()
        if enrollment is not None:
            session.add(
                Enrollment(
                    udid=f"U{number:05d}",
                    device_id=device.id,
                    status=enrollment,
                    profile_id=ids[enrolled[0]] if enrolled else None,
                    profile_revision=enrolled[1] if enrolled else None,
                    first_contact_at=NOW,
                )
            )
        expected[serial] = (
            derive_state(
                apple_status=apple,
                assigned_profile_id=ids[assigned[0]] if assigned else None,
                assigned_revision=assigned[1] if assigned else None,
                enrollment_status=enrollment,
                enrolled_profile_id=ids[enrolled[0]] if enrolled and enrollment else None,
                enrolled_revision=enrolled[1] if enrolled and enrollment else None,
            ),
            cannot_enroll(apple_status=apple, profile_status=profile_status, enrollment_status=enrollment),
        )
    session.flush()
    rows = session.execute(
        select(Device.serial_number, state_expression(), cannot_enroll_expression()).outerjoin(
            Enrollment, Enrollment.device_id == Device.id
        )
    ).all()
    found = {serial: (DeviceState(derived), bool(blocked)) for serial, derived, blocked in rows}
    assert found == expected
    assert {derived for derived, _ in expected.values()} == set(DeviceState)  # every state is reached
    tally = Counter(derived for derived, _ in expected.values())
    assert count_by_state(session) == {state: tally[state] for state in DeviceState}
    assert count_cannot_enroll(session) == sum(blocked for _, blocked in expected.values())


@pytest.mark.parametrize("value", list(DeviceState))
def test_state_values_are_the_wire_strings(value: DeviceState) -> None:
    assert value.value == value.name
