"""One-time enrollment challenges: only a hash is stored, each use is taken once, expiry and use-up are refused."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.errors import InvalidInput
from pippin.pki.challenges import (
    ChallengeRefused,
    EnrollmentBinding,
    RefusalReason,
    binding_of,
    challenge_hash,
    issue_challenge,
    redeem_challenge,
)
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import EnrollmentChallenge
from tests.pki.conftest import T0

BINDING = EnrollmentBinding(
    serial_number="F2LXK0ABCDEF",
    udid="00008030-0001",
    profile_id=7,
    profile_revision=3,
    primary_user_id=11,
    link_id=None,
)


def test_only_the_hash_of_a_challenge_is_stored(session: Session) -> None:
    challenge = issue_challenge(session, binding=BINDING, uses=1, expires_at=T0 + timedelta(hours=1))

    row = session.execute(select(EnrollmentChallenge)).scalar_one()
    assert len(challenge) >= 40 and challenge.replace("-", "").replace("_", "").isalnum()  # URL-safe
    assert row.challenge_hash == challenge_hash(challenge) != challenge
    assert challenge not in repr(vars(row))
    assert binding_of(row) == BINDING
    assert (row.uses_left, row.expires_at) == (1, T0 + timedelta(hours=1))


def test_two_challenges_differ(session: Session) -> None:
    first = issue_challenge(session, binding=BINDING, uses=1, expires_at=T0 + timedelta(hours=1))
    second = issue_challenge(session, binding=BINDING, uses=1, expires_at=T0 + timedelta(hours=1))
    assert first != second


def test_redeeming_takes_one_use_and_a_spent_challenge_is_refused(session: Session) -> None:
    challenge = issue_challenge(session, binding=BINDING, uses=2, expires_at=T0 + timedelta(hours=1))

    assert redeem_challenge(session, challenge, now=T0).uses_left == 1
    row = redeem_challenge(session, challenge, now=T0 + timedelta(minutes=1))
    assert (row.uses_left, row.last_used_at) == (0, T0 + timedelta(minutes=1))
    with pytest.raises(ChallengeRefused) as refused:
        redeem_challenge(session, challenge, now=T0 + timedelta(minutes=2))
    assert refused.value.reason == RefusalReason.used_up


def test_an_expired_challenge_is_refused_and_keeps_its_uses(session: Session) -> None:
    challenge = issue_challenge(session, binding=BINDING, uses=1, expires_at=T0 + timedelta(hours=1))
    with pytest.raises(ChallengeRefused) as refused:
        redeem_challenge(session, challenge, now=T0 + timedelta(hours=1))
    assert refused.value.reason == RefusalReason.expired
    assert session.execute(select(EnrollmentChallenge.uses_left)).scalar_one() == 1


@pytest.mark.parametrize("presented", ["", "x" * 256, "never-issued", "\udcff"])
def test_an_unknown_challenge_is_refused(session: Session, presented: str) -> None:
    issue_challenge(session, binding=BINDING, uses=1, expires_at=T0 + timedelta(hours=1))
    with pytest.raises(ChallengeRefused) as refused:
        redeem_challenge(session, presented, now=T0)
    assert refused.value.reason == RefusalReason.unknown
    assert "never-issued" not in str(refused.value)


def test_a_challenge_needs_a_use(session: Session) -> None:
    with pytest.raises(InvalidInput):
        issue_challenge(session, binding=BINDING, uses=0, expires_at=T0 + timedelta(hours=1))


def test_racing_redeemers_of_the_last_use_get_one_certificate(session_factory: SessionFactory) -> None:
    with transaction(session_factory) as session:
        challenge = issue_challenge(session, binding=BINDING, uses=1, expires_at=T0 + timedelta(hours=1))
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def redeem() -> None:
        barrier.wait()
        try:
            with transaction(session_factory) as session:
                redeem_challenge(session, challenge, now=T0)
            outcomes.append("redeemed")
        except ChallengeRefused as exc:
            outcomes.append(exc.reason.value)

    threads = [threading.Thread(target=redeem) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["redeemed", "used_up", "used_up", "used_up"]
