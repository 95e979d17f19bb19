"""The organisation's users: stored like admins (argon2, lower-case names), refused whole when malformed, and
signed in through the same throttle, on both databases."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.admin import directory
from pippin.admin import users as admin_users
from pippin.admin.audit import Actor, AuditAction, Interface
from pippin.admin.passwords import DEFAULT_PASSWORDS, PasswordWork
from pippin.crypto.secrets import SecretBox
from pippin.errors import Conflict, InvalidInput, NotFound, PippinError
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import AdminUser, AuditEvent, DirectoryUser
from tests.actors import TEST_ACTOR
from tests.admin.hashing import CountingPasswords
from tests.servers import cheap_argon2

PASSWORD = "correct horse battery staple"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DEVICE = Actor(name="anonymous", interface=Interface.device, source="203.0.113.7")


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(DirectoryUser)) or 0


def test_a_user_is_stored_lower_case_with_an_argon2_hash_and_audited(session: Session) -> None:
    added = directory.add_user(
        session,
        username=" Alice.Smith ",
        password=PASSWORD,
        display_name=" Alice Smith ",
        email="Alice@Example.com",
        actor=TEST_ACTOR,
    )
    assert (added.username, added.display_name, added.email) == ("alice.smith", "Alice Smith", "alice@example.com")
    stored = session.scalars(select(DirectoryUser)).one()
    assert stored.password_hash.startswith("$argon2id$") and DEFAULT_PASSWORDS.verify(stored.password_hash, PASSWORD)
    event = session.scalars(select(AuditEvent)).one()
    assert (event.action, event.actor, event.target) == (AuditAction.directory_user_add, "tester", "alice.smith")
    assert PASSWORD not in repr(event.detail)


def test_usernames_are_unique_whatever_their_capitals(session: Session) -> None:
    directory.add_user(session, username="alice", password=PASSWORD, actor=TEST_ACTOR)
    with pytest.raises(Conflict):
        directory.add_user(session, username="ALICE", password=PASSWORD, actor=TEST_ACTOR)
    assert _count(session) == 1


@pytest.mark.parametrize(
    ("username", "password", "name", "email"),
    [
        ("", PASSWORD, None, None),
        ("-alice", PASSWORD, None, None),
        ("al ice", PASSWORD, None, None),
        ("a" * 65, PASSWORD, None, None),
        ("<script>alert(1)</script>", PASSWORD, None, None),
        ("alice\x00", PASSWORD, None, None),
        ("ali\u202ece", PASSWORD, None, None),
        ("alice", "tiny-pw", None, None),
        ("alice", "x" * 5000, None, None),
        ("alice", PASSWORD + "\x1b", None, None),
        ("alice", PASSWORD, "n" * 201, None),
        ("alice", PASSWORD, "Alice\x07", None),
        ("alice", PASSWORD, None, "not-an-address"),
    ],
)
def test_malformed_users_are_refused_and_nothing_is_stored(
    session: Session, username: str, password: str, name: str | None, email: str | None
) -> None:
    with pytest.raises(InvalidInput) as refused:
        directory.add_user(
            session, username=username, password=password, display_name=name, email=email, actor=TEST_ACTOR
        )
    assert refused.value.hint and password not in str(refused.value)
    assert _count(session) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_disabling_keeps_the_user_and_is_audited_once(session: Session) -> None:
    directory.add_user(session, username="bob", password=PASSWORD, actor=TEST_ACTOR)
    first = directory.disable_user(session, username="Bob", actor=TEST_ACTOR, now=T0)
    again = directory.disable_user(session, username="bob", actor=TEST_ACTOR)
    assert first.disabled_at == again.disabled_at == T0
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == [AuditAction.directory_user_add, AuditAction.directory_user_disable]
    with pytest.raises(NotFound):
        directory.disable_user(session, username="nobody", actor=TEST_ACTOR)
    assert [user.username for user in directory.list_users(session)] == ["bob"]


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(os.urandom(32))


@pytest.fixture
def hashing() -> CountingPasswords:
    return CountingPasswords(cheap_argon2())


@pytest.fixture
def work(hashing: CountingPasswords) -> PasswordWork:
    return PasswordWork(hashing, at_once=2, waiting=8, per_client=8)


def _sign_in(factory: SessionFactory, work: PasswordWork, box: SecretBox, username: str, password: str) -> object:
    try:
        return directory.check_sign_in(
            factory,
            username=username,
            password=password,
            actor=DEVICE,
            work=work,
            secret_box=box,
            now=T0,
            serial_number="C02TEST0001",
        )
    except PippinError as error:  # the test compares outcomes
        return error


def test_a_sign_in_takes_the_right_password_of_an_enabled_user_only(
    session_factory: SessionFactory, work: PasswordWork, box: SecretBox, hashing: CountingPasswords
) -> None:
    with transaction(session_factory) as session:
        directory.add_user(session, username="alice", password=PASSWORD, actor=TEST_ACTOR, passwords=cheap_argon2())
        directory.add_user(session, username="carol", password=PASSWORD, actor=TEST_ACTOR, passwords=cheap_argon2())
        directory.disable_user(session, username="carol", actor=TEST_ACTOR)
    good = _sign_in(session_factory, work, box, "ALICE", PASSWORD)
    assert isinstance(good, directory.SignedInUser) and good.username == "alice"
    wrong = _sign_in(session_factory, work, box, "alice", PASSWORD + "!")
    unknown = _sign_in(session_factory, work, box, "mallory", PASSWORD)
    assert isinstance(wrong, admin_users.SignInFailed) and isinstance(unknown, admin_users.SignInFailed)
    assert str(wrong) == str(unknown)  # an unknown user and a wrong password read the same
    assert isinstance(_sign_in(session_factory, work, box, "carol", PASSWORD), directory.DirectoryUserDisabled)
    assert isinstance(_sign_in(session_factory, work, box, "<b>x</b>", PASSWORD), admin_users.SignInFailed)
    assert hashing.verified == 5  # one hash per attempt, whatever the case
    with transaction(session_factory) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action.like("directory.sign_in%"))).all()
        outcomes = [(event.action, event.target) for event in events]
    assert (AuditAction.directory_sign_in, "alice") in outcomes
    assert (AuditAction.directory_sign_in_failed, None) in outcomes  # what was typed for an unknown user is not kept
    assert all(event.detail.get("serial_number") == "C02TEST0001" for event in events)


def test_guessing_one_user_is_throttled_and_an_admin_of_the_same_name_is_not_affected(
    session_factory: SessionFactory, work: PasswordWork, box: SecretBox
) -> None:
    with transaction(session_factory) as session:
        directory.add_user(session, username="ann@example.com", password=PASSWORD, actor=TEST_ACTOR)
        admin_users.create_user(session, email="ann@example.com", password=PASSWORD, actor=TEST_ACTOR)
    outcomes = [_sign_in(session_factory, work, box, "ann@example.com", f"guess {n} of many") for n in range(6)]
    assert isinstance(outcomes[-1], admin_users.SignInThrottled)
    assert isinstance(_sign_in(session_factory, work, box, "ann@example.com", PASSWORD), admin_users.SignInThrottled)
    checked = admin_users.check_password(
        session_factory, email="ann@example.com", password=PASSWORD, actor=DEVICE, work=work, secret_box=box, now=T0
    )
    with transaction(session_factory) as session:
        assert session.get(AdminUser, checked.user_id) is not None
