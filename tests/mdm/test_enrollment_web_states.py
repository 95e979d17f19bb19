"""The enrollment sign-in page's state: bound to one device and one page, used once, ended by time or by too
many wrong passwords; kept only as a hash. Both databases; the clock is a value passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.dep.enrollment_reference import ProfileRevision
from pippin.mdm import enrollment_web_states as states
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import EnrollmentWebState

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PAGE = ProfileRevision(profile_id=3, revision=2)


def _open(session: Session, *, now: datetime = T0, target: ProfileRevision = PAGE) -> str:
    return states.open_state(session, serial_number="C02TEST0001", udid="00008030-AAAA", target=target, now=now)


def test_a_state_is_stored_as_its_hash_and_found_for_its_page(session: Session) -> None:
    state = _open(session)
    stored = session.scalars(select(EnrollmentWebState)).one()
    assert state not in stored.state_sha256 and len(stored.state_sha256) == 64
    found = states.find_state(session, state=state, target=PAGE, now=T0 + timedelta(minutes=29))
    assert (found.serial_number, found.udid, found.target) == ("C02TEST0001", "00008030-AAAA", PAGE)


@pytest.mark.parametrize(
    "forged",
    ["", "x", "A" * states.STATE_CHARS, "<script>alert(1)</script>", "\x00" * 43, "é" * 43, "a" * 5000],
)
def test_a_forged_state_finds_nothing(session: Session, forged: str) -> None:
    _open(session)
    with pytest.raises(states.StateRefused) as refused:
        states.find_state(session, state=forged, target=PAGE, now=T0)
    assert "start of setup" in (refused.value.hint or "")


def test_a_state_is_not_good_for_another_page_or_revision(session: Session) -> None:
    state = _open(session)
    for other in (ProfileRevision(profile_id=3, revision=3), ProfileRevision(profile_id=4, revision=2)):
        with pytest.raises(states.StateRefused):
            states.find_state(session, state=state, target=other, now=T0)


def test_a_state_expires(session: Session) -> None:
    state = _open(session)
    with pytest.raises(states.StateRefused) as refused:
        states.find_state(session, state=state, target=PAGE, now=T0 + states.STATE_LIFETIME)
    assert refused.value.reason == "expired"


def test_a_state_is_used_once_even_by_two_racing_sign_ins(session_factory: SessionFactory) -> None:
    with transaction(session_factory) as session:
        state = _open(session)
    with transaction(session_factory) as session:
        first = states.find_state(session, state=state, target=PAGE, now=T0)
    with transaction(session_factory) as session:
        second = states.find_state(session, state=state, target=PAGE, now=T0)
    with transaction(session_factory) as session:
        states.use_state(session, state=first, now=T0)
    with pytest.raises(states.StateRefused), transaction(session_factory) as session:
        states.use_state(session, state=second, now=T0)
    with pytest.raises(states.StateRefused) as replayed, transaction(session_factory) as session:
        states.find_state(session, state=state, target=PAGE, now=T0)
    assert replayed.value.reason == "been used already"


def test_too_many_wrong_passwords_end_the_page(session: Session) -> None:
    state = _open(session)
    found = states.find_state(session, state=state, target=PAGE, now=T0)
    for _ in range(states.MAX_FAILED_ATTEMPTS - 1):
        states.record_failed_attempt(session, state=found)
    states.find_state(session, state=state, target=PAGE, now=T0)
    states.record_failed_attempt(session, state=found)
    with pytest.raises(states.StateRefused) as refused:
        states.find_state(session, state=state, target=PAGE, now=T0)
    assert refused.value.reason == "had too many wrong passwords"
    with pytest.raises(states.StateRefused):
        states.use_state(session, state=found, now=T0)


def test_expired_states_are_swept_when_pages_open(session: Session) -> None:
    for _ in range(3):
        _open(session)
    later = T0 + states.STATE_LIFETIME + timedelta(seconds=1)
    _open(session, now=later)
    assert session.scalar(select(func.count()).select_from(EnrollmentWebState)) == 1
