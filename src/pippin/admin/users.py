"""Admin accounts for the console: creation, and the password check of a sign-in, throttled and bounded.

Passwords are hashed with argon2id (``admin/passwords.py``). A sign-in's check (:func:`check_password`) answers
an unknown address, a wrong password and a refused attempt with the same work (one password hash), and an
unknown address and a wrong password with the same answer, so nobody learns from the answers or their timing
which admins exist. Guessing is limited by the throttle of ``admin/sign_in_throttle.py``, which counts per
client address and per account, so that a stranger's failures never lock an admin out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin import passwords as password_hashing
from pippin.admin.audit import Actor, AuditAction
from pippin.admin.passwords import Passwords, PasswordWork
from pippin.admin.schemas import AdminUserRead
from pippin.admin.sign_in_throttle import Attempt, claim_attempt, counted_address, counter_secret, give_back
from pippin.crypto.secrets import SecretBox
from pippin.errors import Conflict, InvalidInput, PippinError
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import AdminRole, AdminUser, utcnow
from pippin.text import MAX_EMAIL, check_email, check_text, first_refused_character
from pippin.text import check_password as check_password_text

MIN_PASSWORD_CHARS = 12
# Long enough for any passphrase, short enough that hashing it is never a denial of service.
MAX_PASSWORD_CHARS = 1024
MAX_EMAIL_CHARS = MAX_EMAIL


class SignInFailed(InvalidInput):
    """The e-mail or password is wrong; deliberately not saying which."""

    code = "sign_in_failed"


class SignInThrottled(PippinError):
    """Too many attempts from this address or for this account: refused, whatever the password.

    The message and hint are the same whichever counter refused and whether or not the account exists; only
    the wait differs, and it follows from the attempts made, not from the account.
    """

    code = "sign_in_throttled"

    def __init__(self, *, retry_after: int) -> None:
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(
            "Too many sign-in attempts; sign-in is paused for a while, and no password is accepted until then.",
            hint=f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, or ask another admin for help.",
        )
        #: Seconds until a retry may be checked (sent as ``Retry-After``).
        self.retry_after = retry_after


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
    """The address trimmed and lower-cased, or :class:`InvalidInput` when it is not an e-mail address
    (``pippin.text``'s rule, the same as for Apple IDs)."""
    return check_email(email, field="The e-mail address").lower()


def parse_role(role: str) -> AdminRole:
    try:
        return AdminRole(role)
    except ValueError:
        raise InvalidInput(f"Unknown role {role[:40]!r}.", hint="Use admin or read-only.") from None


def check_password_strength(password: str) -> None:
    check_password_text(password)
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(
            f"The password is shorter than {MIN_PASSWORD_CHARS} characters.",
            hint="Use a longer passphrase; a password manager can make one.",
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput(f"The password is longer than {MAX_PASSWORD_CHARS} characters.", hint="Use a shorter one.")


def to_read(user: AdminUser) -> AdminUserRead:
    return AdminUserRead(
        email=user.email,
        role=user.role,
        created_at=user.created_at,
        last_sign_in_at=user.last_sign_in_at,
        disabled_at=user.disabled_at,
    )


def find_user(session: Session, *, email: str) -> AdminUser | None:
    check_text(email, field="The e-mail address")
    return session.scalars(select(AdminUser).where(AdminUser.email == email.strip().lower())).one_or_none()


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    actor: Actor,
    role: str = AdminRole.admin,
    passwords: Passwords | None = None,
    now: datetime | None = None,
) -> AdminUserRead:
    """A new admin account; refuses a taken address, a weak password or an unknown role, storing nothing.

    ``passwords`` hashes the password: a server passes its bounded :class:`PasswordWork`, a command the default.
    """
    address = normalize_email(email)
    chosen_role = parse_role(role)
    check_password_strength(password)
    taken = Conflict(f"An admin {address!r} already exists.", hint="Choose another address.")
    if find_user(session, email=address) is not None:
        raise taken
    hashing = passwords or password_hashing.DEFAULT_PASSWORDS
    user = AdminUser(email=address, password_hash=hashing.hash(password), role=chosen_role, created_at=now or utcnow())
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError as exc:  # another process took the address between the check and the insert
        raise taken from exc
    audit.record_event(
        session, actor=actor, action=AuditAction.admin_user_create, target=address, detail={"role": chosen_role}
    )
    return to_read(user)


def list_users(session: Session) -> list[AdminUserRead]:
    users = session.scalars(select(AdminUser).order_by(AdminUser.email))
    return [to_read(user) for user in users]


@dataclass(frozen=True)
class CheckedPassword:
    """A password that was right for an account, to be recorded by :func:`record_sign_in`."""

    user_id: int
    attempt: Attempt
    #: The password hashed again when the stored hash used older parameters; made before, outside the transaction.
    new_hash: str | None


def check_password(
    session_factory: SessionFactory,
    *,
    email: str,
    password: str,
    actor: Actor,
    work: PasswordWork,
    secret_box: SecretBox,
    now: datetime,
) -> CheckedPassword:
    """Check a sign-in attempt by ``actor`` (whose ``source`` is the client address); commits in steps.

    In steps, no transaction held open while hashing: the attempt is counted (or refused) and the account read
    in one short transaction; the password is hashed, exactly once whatever the case; a failure is recorded in
    the audit log in another (a refused attempt is not, so a flood cannot fill the log; the attempt that starts
    a block is). Raises
    :class:`SignInFailed` (an unknown address or a wrong password, alike), :class:`SignInThrottled`, or
    :class:`~pippin.admin.passwords.PasswordWorkBusy` (nothing checked or counted). A right password is
    returned for :func:`record_sign_in`, in the transaction that starts the session.
    """
    failed = SignInFailed("The e-mail address or the password is wrong.", hint="Check both and try again.")
    if len(password) > MAX_PASSWORD_CHARS or len(email) > MAX_EMAIL_CHARS:
        raise failed
    if first_refused_character(email) is not None:
        # Said plainly (no account can have such an address), as the same refusal as any other failure.
        raise SignInFailed(
            "The e-mail address contains a control, format or separator character; no account has such an address.",
            hint="Type the address again.",
        )
    secret = counter_secret(secret_box)
    with work.admitted(client=counted_address(actor.source)):  # an IPv6 client's /64 is one client here too
        with transaction(session_factory) as session:
            attempt = claim_attempt(session, secret=secret, account=email, address=actor.source, now=now)
            user = find_user(session, email=email)
            account = (user.id, user.email, user.password_hash) if user is not None else None
        if account is None:
            work.verify_absent(password)
            right = False
        else:
            # A refused attempt on a real account still checks its real hash: the same work as any other.
            right = work.verify(account[2], password)
        accepted = right and attempt.refused_until is None
        new_hash = work.hash(password) if accepted and account and work.needs_rehash(account[2]) else None
    if accepted and account is not None:
        return CheckedPassword(user_id=account[0], attempt=attempt, new_hash=new_hash)
    if attempt.refused_until is not None:
        raise SignInThrottled(retry_after=max(1, math.ceil((attempt.refused_until - now).total_seconds())))
    with transaction(session_factory) as session:
        _record_failure(session, actor=actor, account=account[1] if account else None, attempt=attempt, now=now)
    raise failed


def _record_failure(session: Session, *, actor: Actor, account: str | None, attempt: Attempt, now: datetime) -> None:
    """The audit events of a counted attempt that failed; never the password, nor what was typed as the
    address when no such admin exists (it may be a password typed in the wrong field)."""
    detail = {"account": "known" if account else "unknown"}
    failed = AuditAction.admin_sign_in_failed
    audit.record_event(session, actor=actor, action=failed, target=account, detail=detail, now=now)
    if attempt.blocked_scopes:
        scopes = ", ".join(scope.value for scope in attempt.blocked_scopes)
        audit.record_event(
            session,
            actor=actor,
            action=AuditAction.admin_sign_in_throttled,
            target=account,
            detail={**detail, "counters": scopes},
            now=now,
        )


def record_sign_in(session: Session, *, checked: CheckedPassword, now: datetime) -> AdminUser:
    """Record a right password: the attempt is given back, the address becomes familiar, the hash is renewed.

    Raises :class:`SignInFailed` when the account was removed since its password was checked, and
    :class:`AccountDisabled` when it is disabled (said only now, after the right password).
    """
    user = session.get(AdminUser, checked.user_id)
    if user is None:
        raise SignInFailed("The e-mail address or the password is wrong.", hint="Check both and try again.")
    if user.disabled_at is not None:
        raise AccountDisabled()
    give_back(session, attempt=checked.attempt, now=now)
    user.last_sign_in_at = now
    if checked.new_hash is not None:
        user.password_hash = checked.new_hash
    session.flush()
    return user


def hash_password(password: str, *, passwords: Passwords | None = None) -> str:
    """The hash of a password that passed :func:`check_password_strength`."""
    return (passwords or password_hashing.DEFAULT_PASSWORDS).hash(password)
