"""Admin accounts for the console: creation, argon2 password checks, and lock-out after repeated failures.

Passwords are hashed with argon2id (``argon2-cffi``'s defaults, the RFC 9106 recommendation), so a copy of
the database does not give away the passwords. After :data:`MAX_FAILED_SIGN_INS` consecutive wrong passwords
the account is locked for :data:`LOCKOUT`; a correct password during the lock does not open it, so guessing
gets at most a handful of tries per quarter-hour.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.admin.schemas import AdminUserRead
from pippin.errors import Conflict, InvalidInput, PippinError
from pippin.store.models import AdminRole, AdminUser, utcnow

MAX_FAILED_SIGN_INS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_CHARS = 12
# Long enough for any passphrase, short enough that hashing it is never a denial of service.
MAX_PASSWORD_CHARS = 1024
MAX_EMAIL_CHARS = 320
# RFC 5322's dot-atom characters before the @, a DNS name after it: no quotes, brackets or markup.
_EMAIL_PATTERN = re.compile(r"[a-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[a-z0-9-]+(\.[a-z0-9-]+)+")

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Checked against when the e-mail is unknown, so a wrong address takes as long as a wrong password.

    Made on first use, not at import: hashing costs a noticeable fraction of a second, and every CLI command
    imports this module.
    """
    return _hasher.hash("pippin-no-such-admin")


class SignInFailed(InvalidInput):
    """The e-mail or password is wrong; deliberately not saying which."""

    code = "sign_in_failed"


class AccountLocked(PippinError):
    """Too many failed sign-ins; the account opens again at ``locked_until``."""

    code = "account_locked"

    def __init__(self, *, locked_until: datetime) -> None:
        super().__init__(
            "This account is locked after too many failed sign-ins.",
            hint=f"Try again after {locked_until:%Y-%m-%d %H:%M} UTC, or ask another admin.",
        )
        self.locked_until = locked_until


class AccountDisabled(PippinError):
    """The password is right but the account is disabled; said only after the right password, so it tells a
    guesser nothing."""

    code = "account_disabled"

    def __init__(self) -> None:
        super().__init__(
            "This account is disabled, so it cannot sign in.",
            hint="Ask another admin to enable it (`pippin admin user enable EMAIL`).",
        )


def normalize_email(email: str) -> str:
    """The address trimmed and lower-cased, or :class:`InvalidInput` when it is not an e-mail address."""
    cleaned = email.strip().lower()
    if len(cleaned) > MAX_EMAIL_CHARS or not _EMAIL_PATTERN.fullmatch(cleaned):
        shown = cleaned[:60] + ("..." if len(cleaned) > 60 else "")
        raise InvalidInput(f"{shown!r} is not an e-mail address.", hint="Use the admin's address, e.g. it@example.com.")
    return cleaned


def parse_role(role: str) -> AdminRole:
    try:
        return AdminRole(role)
    except ValueError:
        raise InvalidInput(f"Unknown role {role[:40]!r}.", hint="Use admin or read-only.") from None


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(
            f"The password is shorter than {MIN_PASSWORD_CHARS} characters.",
            hint="Use a longer passphrase; a password manager can make one.",
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput(f"The password is longer than {MAX_PASSWORD_CHARS} characters.", hint="Use a shorter one.")


def to_read(user: AdminUser, *, now: datetime | None = None) -> AdminUserRead:
    moment = now or utcnow()
    locked = user.locked_until if user.locked_until is not None and user.locked_until > moment else None
    return AdminUserRead(
        email=user.email,
        role=user.role,
        created_at=user.created_at,
        last_sign_in_at=user.last_sign_in_at,
        locked_until=locked,
        disabled_at=user.disabled_at,
    )


def find_user(session: Session, *, email: str) -> AdminUser | None:
    return session.scalars(select(AdminUser).where(AdminUser.email == email.strip().lower())).one_or_none()


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    actor: Actor,
    role: str = AdminRole.admin,
    now: datetime | None = None,
) -> AdminUserRead:
    """A new admin account; refuses a taken address, a weak password or an unknown role, storing nothing."""
    address = normalize_email(email)
    chosen_role = parse_role(role)
    check_password_strength(password)
    taken = Conflict(f"An admin {address!r} already exists.", hint="Choose another address.")
    if find_user(session, email=address) is not None:
        raise taken
    user = AdminUser(email=address, password_hash=hash_password(password), role=chosen_role, created_at=now or utcnow())
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:  # another process took the address between the check and the insert
        raise taken from exc
    audit.record_event(
        session, actor=actor, action=AuditAction.admin_user_create, target=address, detail={"role": chosen_role}
    )
    return to_read(user, now=now)


def list_users(session: Session, *, now: datetime | None = None) -> list[AdminUserRead]:
    users = session.scalars(select(AdminUser).order_by(AdminUser.email))
    return [to_read(user, now=now) for user in users]


def authenticate(session: Session, *, email: str, password: str, now: datetime | None = None) -> AdminUser:
    """The admin whose e-mail and password these are; records failures and locks after too many.

    Raises :class:`SignInFailed` (same message for an unknown address and a wrong password),
    :class:`AccountLocked`, or :class:`AccountDisabled` (the right password of a disabled account). The failure
    count is written by the caller's transaction, so the caller must commit also when this raises.
    """
    moment = now or utcnow()
    failed = SignInFailed("The e-mail address or the password is wrong.", hint="Check both and try again.")
    if len(password) > MAX_PASSWORD_CHARS or len(email) > MAX_EMAIL_CHARS:
        raise failed
    user = find_user(session, email=email)
    if user is None:
        _verify(_dummy_hash(), password)
        raise failed
    if user.locked_until is not None and user.locked_until > moment:
        raise AccountLocked(locked_until=user.locked_until)
    if not _verify(user.password_hash, password):
        user.failed_sign_ins += 1
        if user.failed_sign_ins >= MAX_FAILED_SIGN_INS:
            user.failed_sign_ins = 0
            user.locked_until = moment + LOCKOUT
            session.flush()
            raise AccountLocked(locked_until=user.locked_until)
        session.flush()
        raise failed
    if user.disabled_at is not None:
        raise AccountDisabled()
    user.failed_sign_ins = 0
    user.locked_until = None
    user.last_sign_in_at = moment
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    session.flush()
    return user


def hash_password(password: str) -> str:
    """The argon2id hash of a password that passed :func:`check_password_strength`."""
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
