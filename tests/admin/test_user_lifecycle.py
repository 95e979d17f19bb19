"""What admins do to an account: disable (no sign-in, sessions end), enable, unlock, change the role, reset the
password; the last active admin stays; unknown addresses and bad values are refused and change nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pippin.admin import sessions as session_service
from pippin.admin import user_lifecycle as lifecycle
from pippin.admin import users as user_service
from pippin.admin.passwords import DEFAULT_PASSWORDS, PasswordWork
from pippin.crypto.secrets import SecretBox
from pippin.errors import InvalidInput, NotFound
from pippin.store.db import SessionFactory, create_session_factory, transaction
from pippin.store.models import AdminSession, AdminUser, AuditEvent, utcnow
from tests.actors import TEST_ACTOR
from tests.admin.hashing import CountingPasswords
from tests.admin.throttling import block_account, blocked_counters
from tests.servers import quick_password_hashes
from tests.token_with_history import audit_actions, row_counts

PASSWORD = "correct horse battery staple"
BOX = SecretBox(bytes(range(32)))


@pytest.fixture(autouse=True)
def _quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_password_hashes(monkeypatch)


@pytest.fixture
def people(session: Session) -> Iterator[Session]:
    """ann and bo are admins, rita is read-only; ann is signed in twice."""
    for email, role in (("ann@example.com", "admin"), ("bo@example.com", "admin"), ("rita@example.com", "read-only")):
        user_service.create_user(session, email=email, password=PASSWORD, role=role, actor=TEST_ACTOR)
    ann = _user(session, "ann@example.com")
    for _ in range(2):
        session_service.start_session(session, user=ann, actor=TEST_ACTOR)
    yield session


def _signs_in(session: Session, *, email: str, password: str) -> AdminUser:
    """Sign-in's decision on the account as this test's session holds it: the right password, then not disabled.

    The whole sign-in (throttle, hashing bound, its own transactions) is tested in ``test_sign_in.py``.
    """
    user = user_service.find_user(session, email=email)
    if user is None or not DEFAULT_PASSWORDS.verify(user.password_hash, password):
        raise user_service.SignInFailed("The e-mail address or the password is wrong.", hint="Check both.")
    if user.disabled_at is not None:
        raise user_service.AccountDisabled()
    return user


def _user(session: Session, email: str) -> AdminUser:
    return session.scalars(select(AdminUser).where(AdminUser.email == email)).one()


def _sessions_of(session: Session, email: str) -> int:
    return len(session.scalars(select(AdminSession).where(AdminSession.user_id == _user(session, email).id)).all())


def test_a_disabled_admin_cannot_sign_in_and_their_sessions_end(people: Session) -> None:
    disabled = lifecycle.disable_user(people, email="ANN@example.com", actor=TEST_ACTOR)
    assert disabled.disabled_at is not None and _sessions_of(people, "ann@example.com") == 0
    with pytest.raises(user_service.AccountDisabled) as refused:
        _signs_in(people, email="ann@example.com", password=PASSWORD)
    assert refused.value.hint
    # A wrong password still says only that the e-mail or the password is wrong.
    with pytest.raises(user_service.SignInFailed):
        _signs_in(people, email="ann@example.com", password="not the password")
    lifecycle.enable_user(people, email="ann@example.com", actor=TEST_ACTOR)
    assert _signs_in(people, email="ann@example.com", password=PASSWORD).email == "ann@example.com"
    assert audit_actions(people)[-2:] == ["admin.user.disable", "admin.user.enable"]


def test_a_session_of_a_disabled_admin_no_longer_opens_the_console(people: Session) -> None:
    ann = _user(people, "ann@example.com")
    _, cookie = session_service.start_session(people, user=ann, actor=TEST_ACTOR)
    assert session_service.find_session(people, cookie=cookie) is not None
    ann.disabled_at = utcnow()  # as if the sign-in had raced the disable and its session survived
    assert session_service.find_session(people, cookie=cookie) is None


def test_disabling_twice_keeps_the_first_date(people: Session) -> None:
    first = lifecycle.disable_user(people, email="bo@example.com", actor=TEST_ACTOR, now=utcnow() - timedelta(days=1))
    again = lifecycle.disable_user(people, email="bo@example.com", actor=TEST_ACTOR)
    assert again.disabled_at == first.disabled_at


def test_the_last_active_admin_can_be_neither_disabled_nor_made_read_only(people: Session) -> None:
    lifecycle.disable_user(people, email="bo@example.com", actor=TEST_ACTOR)
    before = row_counts(people)
    with pytest.raises(lifecycle.LastActiveAdmin) as refused:
        lifecycle.disable_user(people, email="ann@example.com", actor=TEST_ACTOR)
    assert "last active admin" in refused.value.message and refused.value.hint
    with pytest.raises(lifecycle.LastActiveAdmin):
        lifecycle.set_role(people, email="ann@example.com", role="read-only", actor=TEST_ACTOR)
    assert row_counts(people) == before
    ann = _user(people, "ann@example.com")
    assert (ann.role, ann.disabled_at) == ("admin", None)
    # A read-only account or a disabled admin is no admin anyone relies on: those change freely.
    lifecycle.disable_user(people, email="rita@example.com", actor=TEST_ACTOR)
    lifecycle.set_role(people, email="bo@example.com", role="read-only", actor=TEST_ACTOR)


def test_promoting_then_demoting_moves_the_last_admin(people: Session) -> None:
    lifecycle.set_role(people, email="rita@example.com", role="admin", actor=TEST_ACTOR)
    lifecycle.set_role(people, email="ann@example.com", role="read-only", actor=TEST_ACTOR)
    demoted = lifecycle.set_role(people, email="bo@example.com", role="read-only", actor=TEST_ACTOR)
    assert demoted.role == "read-only"
    with pytest.raises(lifecycle.LastActiveAdmin):
        lifecycle.set_role(people, email="rita@example.com", role="read-only", actor=TEST_ACTOR)
    event = audit_actions(people)
    assert event.count("admin.user.set_role") == 3


def test_unlocking_forgets_the_accounts_failures_from_every_address(people: Session) -> None:
    block_account(people, BOX, "bo@example.com")
    block_account(people, BOX, "bo@example.com", address="203.0.113.9")
    assert blocked_counters(people, BOX, "bo@example.com") == 2
    lifecycle.unlock_user(people, email="bo@example.com", actor=TEST_ACTOR, secret_box=BOX)
    assert blocked_counters(people, BOX, "bo@example.com") == 0
    event = people.scalars(select(AuditEvent).where(AuditEvent.action == "admin.user.unlock")).one()
    assert event.detail == {"was_locked": True}


def test_a_generated_password_replaces_the_old_one_unlocks_and_ends_sessions(people: Session) -> None:
    block_account(people, BOX, "ann@example.com")
    reset = lifecycle.reset_password(people, email="ann@example.com", actor=TEST_ACTOR, secret_box=BOX)
    assert reset.password is not None and len(reset.password) >= user_service.MIN_PASSWORD_CHARS
    assert blocked_counters(people, BOX, "ann@example.com") == 0 and _sessions_of(people, "ann@example.com") == 0
    with pytest.raises(user_service.SignInFailed):
        _signs_in(people, email="ann@example.com", password=PASSWORD)
    assert _signs_in(people, email="ann@example.com", password=reset.password)
    assert reset.password not in _user(people, "ann@example.com").password_hash
    event_details = [str(detail) for detail in people.scalars(select(AuditEvent.detail))]
    assert all(reset.password not in detail for detail in event_details)


def test_a_given_password_is_checked_and_not_returned(people: Session) -> None:
    new = "a brand new passphrase"
    reset = lifecycle.reset_password(people, email="bo@example.com", password=new, actor=TEST_ACTOR, secret_box=BOX)
    assert reset.password is None
    assert _signs_in(people, email="bo@example.com", password=new)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: lifecycle.disable_user(s, email="ghost@example.com", actor=TEST_ACTOR), NotFound),
        (lambda s: lifecycle.enable_user(s, email="ghost@example.com", actor=TEST_ACTOR), NotFound),
        (lambda s: lifecycle.unlock_user(s, email="not an address", actor=TEST_ACTOR, secret_box=BOX), InvalidInput),
        (lambda s: lifecycle.set_role(s, email="bo@example.com", role="superuser", actor=TEST_ACTOR), InvalidInput),
        (lambda s: lifecycle.set_role(s, email="ghost@example.com", role="admin", actor=TEST_ACTOR), NotFound),
        (
            lambda s: lifecycle.reset_password(
                s, email="bo@example.com", password="x", actor=TEST_ACTOR, secret_box=BOX
            ),
            InvalidInput,
        ),
        (lambda s: lifecycle.reset_password(s, email="ghost@example.com", actor=TEST_ACTOR, secret_box=BOX), NotFound),
    ],
)
def test_refusals_change_nothing(people: Session, call, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    before = row_counts(people)
    hashes = list(people.scalars(select(AdminUser.password_hash).order_by(AdminUser.id)))
    with pytest.raises(error) as refused:
        call(people)
    assert refused.value.hint  # type: ignore[attr-defined]
    assert row_counts(people) == before
    assert list(people.scalars(select(AdminUser.password_hash).order_by(AdminUser.id))) == hashes
    assert _user(people, "bo@example.com").role == "admin"


def test_two_admins_disabling_each_other_at_once_leave_one_active(engine: Engine) -> None:
    factory: SessionFactory = create_session_factory(engine)
    with transaction(factory) as session:
        for email in ("ann@example.com", "bo@example.com"):
            user_service.create_user(session, email=email, password=PASSWORD, actor=TEST_ACTOR)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def disable(email: str) -> None:
        barrier.wait()
        try:
            with transaction(factory) as session:
                lifecycle.disable_user(session, email=email, actor=TEST_ACTOR)
            outcomes.append("disabled")
        except lifecycle.LastActiveAdmin:
            outcomes.append("refused")

    threads = [threading.Thread(target=disable, args=(email,)) for email in ("ann@example.com", "bo@example.com")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["disabled", "refused"]
    with transaction(factory) as session:
        active = session.scalars(select(AdminUser.email).where(AdminUser.disabled_at.is_(None))).all()
    assert len(active) == 1


def test_a_reset_hashes_with_the_password_work_it_is_given(people: Session) -> None:
    """A server passes its bounded hashing (``ServerResources.password_work``), so a reset waits its turn too."""
    counting = CountingPasswords(DEFAULT_PASSWORDS)
    new = "a brand new passphrase"
    lifecycle.reset_password(
        people, email="bo@example.com", password=new, actor=TEST_ACTOR, secret_box=BOX, passwords=PasswordWork(counting)
    )
    assert counting.hashed == 1
    assert _signs_in(people, email="bo@example.com", password=new)
