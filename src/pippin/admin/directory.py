"""The organisation's users, in a local directory: who may sign in on a device's enrollment page (user affinity).

A user signs in with a username, not an e-mail address: what people type on a phone in Setup Assistant, and
what a directory will hand over when single sign-on replaces this. Usernames are unique whatever their
capitals (stored lower-case). Passwords are hashed and checked exactly like admins' (``admin/passwords.py``,
the same rules of ``admin/users.py``), and sign-ins are counted by the same throttle
(``admin/sign_in_throttle.py``), under account names no admin address can take, so a guesser on an enrollment
page and one on the console share nothing. Disabling a user keeps the row: devices still name their primary
user.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin import passwords as password_hashing
from pippin.admin.audit import Actor, AuditAction
from pippin.admin.passwords import Passwords, PasswordWork
from pippin.admin.sign_in_throttle import claim_attempt, counted_address, counter_secret, give_back
from pippin.admin.users import MAX_PASSWORD_CHARS, SignInFailed, SignInThrottled, check_password_strength
from pippin.crypto.secrets import SecretBox
from pippin.errors import Conflict, InvalidInput, NotFound, PippinError
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import DirectoryUser, utcnow
from pippin.text import check_email, check_text

MAX_USERNAME_CHARS = 64
MAX_DISPLAY_NAME_CHARS = 200
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]*")
#: Throttle counters of directory sign-ins are named ``directory:USERNAME``: no admin address has a colon.
_THROTTLE_ACCOUNT_PREFIX = "directory:"


class DirectoryUserRead(BaseModel):
    """An organisation user as admins may see them: never the password or its hash."""

    id: int = Field(description="The user's number; devices name their primary user by it.")
    username: str = Field(description="What the user types to sign in (lower-case).")
    display_name: str | None
    email: str | None
    created_at: datetime
    disabled_at: datetime | None = Field(description="When the user was disabled; null while they may sign in.")


class DirectoryUserDisabled(PippinError):
    """The password is right but the user is disabled: said only after the right password."""

    code = "directory_user_disabled"

    def __init__(self) -> None:
        super().__init__(
            "This account is disabled, so it cannot enroll a device.",
            hint="Ask your IT department to enable it, then start setup again.",
        )


@dataclass(frozen=True)
class SignedInUser:
    """An enabled organisation user whose password was right."""

    id: int
    username: str
    display_name: str | None


def normalize_username(username: str) -> str:
    """``username`` trimmed and lower-cased, or :class:`InvalidInput` saying what is wrong with it."""
    check_text(username, field="The username")
    name = username.strip().lower()
    if not name:
        raise InvalidInput("The username is empty.", hint="Give a username, e.g. alice or alice.smith.")
    if len(name) > MAX_USERNAME_CHARS:
        raise InvalidInput(f"The username is longer than {MAX_USERNAME_CHARS} characters.", hint="Use a shorter one.")
    if not _USERNAME.fullmatch(name):
        raise InvalidInput(
            "The username may hold only letters a-z, digits and . _ @ -, and starts with a letter or digit.",
            hint="e.g. alice, alice.smith or alice@example.com.",
        )
    return name


def check_display_name(name: str | None) -> str | None:
    """The display name trimmed (``None`` when empty), or :class:`InvalidInput`."""
    if name is None:
        return None
    check_text(name, field="The display name")
    shown = name.strip()
    if len(shown) > MAX_DISPLAY_NAME_CHARS:
        raise InvalidInput(
            f"The display name is longer than {MAX_DISPLAY_NAME_CHARS} characters.", hint="Use a shorter one."
        )
    return shown or None


def check_user_email(email: str | None) -> str | None:
    """The address trimmed and lower-cased (``None`` when empty), or :class:`InvalidInput`."""
    if email is None or not email.strip():
        return None
    return check_email(email, field="The e-mail address").lower()


def to_read(user: DirectoryUser) -> DirectoryUserRead:
    return DirectoryUserRead(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        created_at=user.created_at,
        disabled_at=user.disabled_at,
    )


def find_user(session: Session, *, username: str) -> DirectoryUser | None:
    """The user called ``username`` (any capitals), or ``None``; a name no user can have finds nobody."""
    try:
        name = normalize_username(username)
    except InvalidInput:
        return None
    return session.scalars(select(DirectoryUser).where(DirectoryUser.username == name)).one_or_none()


def _taken(username: str) -> Conflict:
    return Conflict(f"A user {username!r} already exists.", hint="Choose another username, or disable that user.")


def add_user(
    session: Session,
    *,
    username: str,
    password: str,
    actor: Actor,
    display_name: str | None = None,
    email: str | None = None,
    passwords: Passwords | None = None,
    via: str | None = None,
    now: datetime | None = None,
) -> DirectoryUserRead:
    """A new organisation user; refuses a taken username, a weak password or a malformed field, storing nothing.

    ``passwords`` hashes the password: a server passes its bounded :class:`PasswordWork`, a command the default.
    """
    name = normalize_username(username)
    shown = check_display_name(display_name)
    address = check_user_email(email)
    check_password_strength(password)
    if find_user(session, username=name) is not None:
        raise _taken(name)
    password_hash = (passwords or password_hashing.DEFAULT_PASSWORDS).hash(password)
    return insert_user(
        session,
        username=name,
        display_name=shown,
        email=address,
        password_hash=password_hash,
        actor=actor,
        via=via,
        now=now or utcnow(),
    )


def insert_user(
    session: Session,
    *,
    username: str,
    display_name: str | None,
    email: str | None,
    password_hash: str,
    actor: Actor,
    via: str | None,
    now: datetime,
) -> DirectoryUserRead:
    """Store one user whose fields were checked and password hashed already (an import hashes them all first)."""
    user = DirectoryUser(
        username=username, display_name=display_name, email=email, password_hash=password_hash, created_at=now
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:  # another process took the username between the check and the insert
        raise _taken(username) from exc
    detail = {"via": via} if via else None
    audit.record_event(
        session, actor=actor, action=AuditAction.directory_user_add, target=username, detail=detail, now=now
    )
    return to_read(user)


def list_users(session: Session) -> list[DirectoryUserRead]:
    """Every user, by username."""
    return [to_read(user) for user in session.scalars(select(DirectoryUser).order_by(DirectoryUser.username))]


def disable_user(session: Session, *, username: str, actor: Actor, now: datetime | None = None) -> DirectoryUserRead:
    """Disable a user: their password opens no enrollment page from now on. Disabling twice changes nothing."""
    name = normalize_username(username)
    user = session.scalars(select(DirectoryUser).where(DirectoryUser.username == name).with_for_update()).one_or_none()
    if user is None:
        raise NotFound(f"There is no user {name!r}.", hint="`pippin users list` shows them.")
    if user.disabled_at is None:
        moment = now or utcnow()
        user.disabled_at = moment
        audit.record_event(session, actor=actor, action=AuditAction.directory_user_disable, target=name, now=moment)
        session.flush()
    return to_read(user)


def sign_in_failed() -> SignInFailed:
    return SignInFailed("The username or the password is wrong.", hint="Check both and try again.")


def check_sign_in(
    session_factory: SessionFactory,
    *,
    username: str,
    password: str,
    actor: Actor,
    work: PasswordWork,
    secret_box: SecretBox,
    now: datetime,
    serial_number: str | None = None,
) -> SignedInUser:
    """Check an organisation user's sign-in by ``actor`` (whose ``source`` is the client address); commits in steps.

    As the admins' (``admin/users.check_password``): the attempt is counted (or refused) and the user read in one
    short transaction, the password hashed exactly once whatever the case, a counted failure recorded in the
    audit log, and a success given back to the throttle. Raises :class:`SignInFailed` (an unknown user or a wrong
    password, alike), :class:`SignInThrottled`, :class:`DirectoryUserDisabled` (after the right password only) or
    :class:`~pippin.admin.passwords.PasswordWorkBusy`.
    """
    if len(password) > MAX_PASSWORD_CHARS or len(username) > MAX_USERNAME_CHARS * 4:
        raise sign_in_failed()
    try:
        name = normalize_username(username)
    except InvalidInput:
        name = None
    account_name = _THROTTLE_ACCOUNT_PREFIX + (name or username.strip().lower())
    secret = counter_secret(secret_box)
    with work.admitted(client=counted_address(actor.source)):
        with transaction(session_factory) as session:
            attempt = claim_attempt(session, secret=secret, account=account_name, address=actor.source, now=now)
            user = find_user(session, username=name) if name else None
            account = (user.id, user.username, user.password_hash) if user is not None else None
        if account is None:
            work.verify_absent(password)
            right = False
        else:
            right = work.verify(account[2], password)
    detail = {"serial_number": serial_number} if serial_number else {}
    if attempt.refused_until is not None:
        raise SignInThrottled(retry_after=max(1, math.ceil((attempt.refused_until - now).total_seconds())))
    if not right or account is None:
        with transaction(session_factory) as session:
            audit.record_event(
                session,
                actor=actor,
                action=AuditAction.directory_sign_in_failed,
                target=account[1] if account else None,
                detail={**detail, "account": "known" if account else "unknown"},
                now=now,
            )
        raise sign_in_failed()
    with transaction(session_factory) as session:
        found = session.get(DirectoryUser, account[0])
        if found is None:
            raise sign_in_failed()
        if found.disabled_at is not None:
            raise DirectoryUserDisabled()
        give_back(session, attempt=attempt, now=now)
        signed_in = Actor(name=found.username, interface=actor.interface, source=actor.source)
        audit.record_event(
            session,
            actor=signed_in,
            action=AuditAction.directory_sign_in,
            target=found.username,
            detail=detail,
            now=now,
        )
        return SignedInUser(id=found.id, username=found.username, display_name=found.display_name)
