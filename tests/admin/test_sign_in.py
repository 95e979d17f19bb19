"""Signing in: the same answer and the same work whether or not the account exists, a throttle that stops
guessing without letting a stranger keep an admin out, and the audit trail of failures. Both databases; the
clock is a value passed in, so no test waits."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from pippin.admin import sessions as session_service
from pippin.admin import sign_in_throttle as throttle
from pippin.admin import user_lifecycle
from pippin.admin import users as user_service
from pippin.admin.actor import ANONYMOUS
from pippin.admin.audit import Actor, AuditAction, Interface
from pippin.admin.passwords import PasswordWork
from pippin.crypto.secrets import SecretBox
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import AdminSession, AdminUser, AuditEvent, SignInThrottle
from tests.actors import TEST_ACTOR
from tests.admin.hashing import CountingPasswords
from tests.servers import cheap_argon2

PASSWORD = "correct horse battery staple"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ANN = "ann@example.com"
Outcome = str | user_service.SignInFailed | user_service.SignInThrottled


@pytest.fixture
def hashing() -> CountingPasswords:
    return CountingPasswords(cheap_argon2())


@pytest.fixture
def work(hashing: CountingPasswords) -> PasswordWork:
    return PasswordWork(hashing, at_once=4, waiting=32, per_client=32)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(os.urandom(32))


@pytest.fixture
def ann(session_factory: SessionFactory) -> None:
    with transaction(session_factory) as session:
        user_service.create_user(session, email=ANN, password=PASSWORD, actor=TEST_ACTOR, passwords=cheap_argon2())


class SignIns:
    """Sign-in attempts against one database, from any address, at any moment."""

    def __init__(self, session_factory: SessionFactory, work: PasswordWork, box: SecretBox) -> None:
        self.session_factory = session_factory
        self.work = work
        self.box = box

    def attempt(self, email: str, password: str, *, address: str, now: datetime = T0) -> Outcome:
        actor = Actor(name=ANONYMOUS, interface=Interface.console, source=address)
        try:
            return session_service.sign_in(
                self.session_factory,
                email=email,
                password=password,
                actor=actor,
                work=self.work,
                secret_box=self.box,
                now=now,
            )
        except (user_service.SignInFailed, user_service.SignInThrottled) as error:
            return error

    def fail(self, email: str, times: int, *, address: str, now: datetime = T0) -> list[Outcome]:
        return [self.attempt(email, f"guess number {n}", address=address, now=now) for n in range(times)]


@pytest.fixture
def sign_ins(session_factory: SessionFactory, work: PasswordWork, box: SecretBox) -> SignIns:
    return SignIns(session_factory, work, box)


def _answer(outcome: Outcome) -> tuple[str, str, str | None, int | None]:
    assert not isinstance(outcome, str), "the sign-in succeeded"
    return (outcome.code, outcome.message, outcome.hint, getattr(outcome, "retry_after", None))


def _signed_in(outcome: Outcome) -> bool:
    return isinstance(outcome, str) and len(outcome) > 20


def test_unknown_known_and_refused_accounts_get_the_same_answer_and_one_hash_each(
    ann: None, sign_ins: SignIns, work: PasswordWork, hashing: CountingPasswords
) -> None:
    work.verify_absent("warm up")  # the stand-in hash for absent accounts is made once, on first use
    hashing.verified = hashing.hashed = 0
    answers = {}
    for account in (ANN, "nobody@example.com"):
        before = hashing.verified
        answers[account, "wrong"] = _answer(sign_ins.attempt(account, "not the password", address="192.0.2.1"))
        assert hashing.verified - before == 1
        sign_ins.fail(account, throttle.ACCOUNT_ADDRESS_LIMIT, address="192.0.2.2")
        before = hashing.verified
        answers[account, "refused"] = _answer(sign_ins.attempt(account, PASSWORD, address="192.0.2.2"))
        assert hashing.verified - before == 1, "a refused attempt runs the same hash as any other"
    assert answers[ANN, "wrong"] == answers["nobody@example.com", "wrong"]
    assert answers[ANN, "wrong"][:2] == ("sign_in_failed", "The e-mail address or the password is wrong.")
    assert answers[ANN, "refused"] == answers["nobody@example.com", "refused"]
    assert answers[ANN, "refused"][0] == "sign_in_throttled"
    assert answers[ANN, "refused"][3] == throttle.BLOCK.total_seconds()
    assert hashing.hashed == 0, "no attempt hashed anything but the one check"


def test_a_stranger_failing_from_one_address_cannot_keep_the_admin_out(ann: None, sign_ins: SignIns) -> None:
    for minute in range(0, 120, 10):  # two hours of guessing, well past every block
        now = T0 + timedelta(minutes=minute)
        outcomes = sign_ins.fail(ANN, throttle.ACCOUNT_ADDRESS_LIMIT + 2, address="203.0.113.66", now=now)
        assert sum(isinstance(o, user_service.SignInFailed) for o in outcomes) <= throttle.ACCOUNT_ADDRESS_LIMIT
        assert _signed_in(sign_ins.attempt(ANN, PASSWORD, address="198.51.100.7", now=now))


def test_guessing_from_one_address_is_refused_even_the_right_password_until_the_block_ends(
    ann: None, sign_ins: SignIns
) -> None:
    failures = sign_ins.fail(ANN, throttle.ACCOUNT_ADDRESS_LIMIT, address="203.0.113.66")
    assert all(isinstance(o, user_service.SignInFailed) for o in failures)
    refused = sign_ins.attempt(ANN, PASSWORD, address="203.0.113.66", now=T0 + timedelta(minutes=14))
    assert isinstance(refused, user_service.SignInThrottled) and refused.retry_after == 60
    assert isinstance(sign_ins.fail(ANN, 1, address="203.0.113.66", now=T0 + timedelta(minutes=14))[0], type(refused))
    assert _signed_in(sign_ins.attempt(ANN, PASSWORD, address="203.0.113.66", now=T0 + throttle.BLOCK))


def test_spraying_many_accounts_from_one_address_blocks_the_address(ann: None, sign_ins: SignIns) -> None:
    for n in range(throttle.ADDRESS_LIMIT):
        assert isinstance(
            sign_ins.attempt(f"user{n}@example.com", "Winter2026!", address="203.0.113.66"), user_service.SignInFailed
        )
    assert isinstance(sign_ins.attempt(ANN, PASSWORD, address="203.0.113.66"), user_service.SignInThrottled)
    assert _signed_in(sign_ins.attempt(ANN, PASSWORD, address="198.51.100.7"))


def test_many_addresses_slow_an_account_down_but_never_for_its_familiar_address(ann: None, sign_ins: SignIns) -> None:
    assert _signed_in(sign_ins.attempt(ANN, PASSWORD, address="198.51.100.7", now=T0 - timedelta(days=3)))
    for n in range(throttle.ACCOUNT_LIMIT):  # a botnet: one guess from each address
        assert isinstance(sign_ins.fail(ANN, 1, address=f"10.9.0.{n}")[0], user_service.SignInFailed)
    slowed = sign_ins.attempt(ANN, PASSWORD, address="192.0.2.200")
    assert isinstance(slowed, user_service.SignInThrottled)
    assert slowed.retry_after == throttle.ACCOUNT_SPACING.total_seconds()
    assert _signed_in(sign_ins.attempt(ANN, PASSWORD, address="198.51.100.7")), "the usual address is not slowed"
    # Slowed, not locked: after the spacing, an unfamiliar address gets its turn.
    assert _signed_in(sign_ins.attempt(ANN, PASSWORD, address="192.0.2.200", now=T0 + throttle.ACCOUNT_SPACING))


def test_a_right_password_gives_its_attempt_back(ann: None, sign_ins: SignIns) -> None:
    sign_ins.fail(ANN, throttle.ACCOUNT_ADDRESS_LIMIT - 1, address="192.0.2.1")
    assert _signed_in(sign_ins.attempt(ANN, PASSWORD, address="192.0.2.1"))
    again = sign_ins.fail(ANN, throttle.ACCOUNT_ADDRESS_LIMIT - 1, address="192.0.2.1")
    assert all(isinstance(o, user_service.SignInFailed) for o in again), "the count started again at zero"


def test_the_last_allowed_attempt_may_succeed_and_leaves_no_block(ann: None, sign_ins: SignIns) -> None:
    sign_ins.fail(ANN, throttle.ACCOUNT_ADDRESS_LIMIT - 1, address="192.0.2.1")
    assert _signed_in(sign_ins.attempt(ANN, PASSWORD, address="192.0.2.1"))
    assert isinstance(sign_ins.fail(ANN, 1, address="192.0.2.1")[0], user_service.SignInFailed)


def test_success_records_the_sign_in_and_its_session_together(
    ann: None, sign_ins: SignIns, session_factory: SessionFactory
) -> None:
    assert _signed_in(sign_ins.attempt("  Ann@Example.com", PASSWORD, address="192.0.2.1"))
    with transaction(session_factory) as session:
        user = session.scalars(select(AdminUser)).one()
        assert user.last_sign_in_at == T0
        assert session.scalar(select(func.count()).select_from(AdminSession)) == 1
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditAction.admin_sign_in)).one()
        assert (event.actor, event.source) == (ANN, "192.0.2.1")


def test_failed_and_throttled_sign_ins_are_audited_without_the_password(
    ann: None, sign_ins: SignIns, session_factory: SessionFactory
) -> None:
    secret = "my-real-passphrase"
    sign_ins.fail(ANN, throttle.ACCOUNT_ADDRESS_LIMIT + 3, address="203.0.113.66")
    sign_ins.attempt(secret, secret, address="203.0.113.67")  # a password typed into the e-mail field
    with transaction(session_factory) as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.actor == ANONYMOUS).order_by(AuditEvent.id)))
    actions = [(event.action, event.target, event.source) for event in events]
    failed = (AuditAction.admin_sign_in_failed.value, ANN, "203.0.113.66")
    throttled = (AuditAction.admin_sign_in_throttled.value, ANN, "203.0.113.66")
    unknown = (AuditAction.admin_sign_in_failed.value, None, "203.0.113.67")
    # Refused attempts (after the block started) are not recorded: a flood cannot fill the log.
    assert actions == [failed] * throttle.ACCOUNT_ADDRESS_LIMIT + [throttled, unknown]
    assert events[-2].detail == {"account": "known", "counters": "account_address"}
    assert events[-1].detail == {"account": "unknown"}
    for event in events:
        assert secret not in repr((event.target, event.detail)) and "guess" not in repr((event.target, event.detail))


def test_parallel_guesses_are_all_counted_before_any_is_checked(ann: None, sign_ins: SignIns) -> None:
    racers = 12
    start = threading.Barrier(racers)
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def guess(n: int) -> None:
        start.wait()
        outcome = sign_ins.attempt(ANN, f"parallel guess {n}", address="203.0.113.66")
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    checked = [o for o in outcomes if isinstance(o, user_service.SignInFailed)]
    refused = [o for o in outcomes if isinstance(o, user_service.SignInThrottled)]
    assert (len(checked), len(refused)) == (throttle.ACCOUNT_ADDRESS_LIMIT, racers - throttle.ACCOUNT_ADDRESS_LIMIT)


def test_counters_that_no_longer_matter_are_forgotten(
    ann: None, sign_ins: SignIns, session_factory: SessionFactory
) -> None:
    assert _signed_in(sign_ins.attempt(ANN, PASSWORD, address="198.51.100.7"))
    sign_ins.fail("nobody@example.com", throttle.ACCOUNT_ADDRESS_LIMIT, address="203.0.113.66")
    later = T0 + throttle.WINDOW + throttle.BLOCK
    sign_ins.fail("someone@example.com", 1, address="192.0.2.9", now=later)
    with transaction(session_factory) as session:
        left = session.scalar(select(func.count()).select_from(SignInThrottle))
        remembered = session.scalars(select(SignInThrottle).where(SignInThrottle.succeeded_at.is_not(None))).one()
    # The new attempt's three counters, and the one that remembers Ann's address as familiar.
    assert left == 4 and remembered.succeeded_at == T0


def test_an_ipv6_client_counts_as_its_64_network(ann: None, sign_ins: SignIns) -> None:
    for n in range(throttle.ACCOUNT_ADDRESS_LIMIT):  # a new address of the same /64 for every guess
        assert isinstance(sign_ins.fail(ANN, 1, address=f"2001:db8:1:2::{n + 1:x}")[0], user_service.SignInFailed)
    assert isinstance(sign_ins.attempt(ANN, PASSWORD, address="2001:db8:1:2:ffff::1"), user_service.SignInThrottled)
    assert _signed_in(sign_ins.attempt(ANN, PASSWORD, address="2001:db8:1:3::1"))
    assert throttle.counted_address("::ffff:192.0.2.7") == "192.0.2.7"
    assert throttle.counted_address(None) == throttle.UNKNOWN_ADDRESS


@pytest.mark.parametrize("email", ["a\x00b@example.com", "ann@example.com\u202e", "\x00"])
def test_a_sign_in_with_a_control_character_in_the_address_fails_naming_it(
    sign_ins: SignIns, ann: None, session_factory: SessionFactory, hashing: CountingPasswords, email: str
) -> None:
    """No account can have such an address, so saying so tells nothing; nothing is hashed or counted."""
    outcome = sign_ins.attempt(email, PASSWORD, address="192.0.2.1")
    assert isinstance(outcome, user_service.SignInFailed)
    assert "e-mail address contains a control, format or separator" in str(outcome)
    with transaction(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(SignInThrottle)) == 0


def test_a_disabled_admin_is_told_so_only_after_the_right_password(
    sign_ins: SignIns, ann: None, session_factory: SessionFactory, box: SecretBox
) -> None:
    with transaction(session_factory) as session:
        user_service.create_user(
            session, email="bo@example.com", password=PASSWORD, actor=TEST_ACTOR, passwords=cheap_argon2()
        )
        user_lifecycle.disable_user(session, email=ANN, actor=TEST_ACTOR)
    assert isinstance(sign_ins.attempt(ANN, "a wrong guess", address="192.0.2.1"), user_service.SignInFailed)
    with pytest.raises(user_service.AccountDisabled):
        sign_ins.attempt(ANN, PASSWORD, address="192.0.2.1")


def test_unlocking_lets_the_admin_in_from_the_address_that_was_blocked(
    sign_ins: SignIns, ann: None, session_factory: SessionFactory, box: SecretBox
) -> None:
    sign_ins.fail(ANN, throttle.ACCOUNT_ADDRESS_LIMIT, address="192.0.2.1")
    assert isinstance(sign_ins.attempt(ANN, PASSWORD, address="192.0.2.1"), user_service.SignInThrottled)
    with transaction(session_factory) as session:
        user_lifecycle.unlock_user(session, email=ANN, actor=TEST_ACTOR, secret_box=box, now=T0)
    assert isinstance(sign_ins.attempt(ANN, PASSWORD, address="192.0.2.1"), str)
