"""What admins do to an existing account: disable and enable it, unlock it, change its role, reset its password.

Each is one use case that records its audit event in the caller's transaction. Two rules hold for all of them:

- **Someone can always administer Pippin.** The last active account with the role ``admin`` can be neither
  disabled nor made read-only (:class:`LastActiveAdmin`). The check locks every active admin's row first, so two
  admins disabling each other at the same moment cannot both succeed: on PostgreSQL the second waits for the
  first and then counts again; on SQLite write transactions are serialised from their start.
- **A change that takes access away takes it away now.** Disabling an account, and giving it a new password,
  delete its console sessions in the same transaction. (API tokens belong to no admin: they are revoked on their
  own, ``pippin admin token revoke``.)

A generated password is returned to the caller once, to pass on; it is never stored in clear, logged or put in
the audit log.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.admin.passwords import Passwords
from pippin.admin.schemas import AdminUserRead, PasswordResetRead
from pippin.admin.sign_in_throttle import counter_secret, release_account
from pippin.admin.users import (
    check_password_strength,
    find_user,
    hash_password,
    normalize_email,
    parse_role,
    to_read,
)
from pippin.crypto.secrets import SecretBox
from pippin.errors import Conflict, NotFound
from pippin.store.models import AdminRole, AdminSession, AdminUser, utcnow

#: Random bytes in a generated password: 18 give 24 url-safe characters (144 bits), past any guessing.
_GENERATED_PASSWORD_BYTES = 18


class LastActiveAdmin(Conflict):
    """The change would leave no active account with the role ``admin``; nothing was changed."""

    code = "last_active_admin"

    def __init__(self, email: str, *, change: str) -> None:
        super().__init__(
            f"{email} is the last active admin with the role admin, so it cannot be {change}; nothing was changed.",
            hint="Create or enable another admin first (`pippin admin user create EMAIL`), then try again.",
        )


def get_user(session: Session, *, email: str) -> AdminUser:
    """The account with this e-mail; NotFound (the address is checked, never echoed unchecked) says where to look."""
    address = normalize_email(email)
    user = find_user(session, email=address)
    if user is None:
        raise NotFound(f"There is no admin {address!r}.", hint="`pippin admin user list` shows every account.")
    return user


def _ensure_another_active_admin(session: Session, user: AdminUser, *, change: str) -> None:
    """Refuse when ``user`` is the only active account with the role admin (see the module docstring)."""
    active_admins = session.scalars(
        select(AdminUser.id)
        .where(AdminUser.role == AdminRole.admin, AdminUser.disabled_at.is_(None))
        .order_by(AdminUser.id)
        .with_for_update()
    ).all()
    if list(active_admins) == [user.id]:
        raise LastActiveAdmin(user.email, change=change)


def _end_sessions(session: Session, user: AdminUser) -> int:
    result = session.execute(delete(AdminSession).where(AdminSession.user_id == user.id))
    return int(getattr(result, "rowcount", 0) or 0)


def _record(session: Session, *, actor: Actor, action: AuditAction, user: AdminUser, detail: dict[str, Any]) -> None:
    audit.record_event(session, actor=actor, action=action, target=user.email, detail=detail)


def disable_user(session: Session, *, email: str, actor: Actor, now: datetime | None = None) -> AdminUserRead:
    """Stop the account from signing in and end its sessions; disabling it again keeps the first date."""
    moment = now or utcnow()
    user = get_user(session, email=email)
    already = user.disabled_at is not None
    if not already:
        if user.role == AdminRole.admin:
            _ensure_another_active_admin(session, user, change="disabled")
        user.disabled_at = moment
    ended = _end_sessions(session, user)
    _record(
        session,
        actor=actor,
        action=AuditAction.admin_user_disable,
        user=user,
        detail={"already_disabled": already, "sessions_ended": ended},
    )
    session.flush()
    return to_read(user)


def enable_user(session: Session, *, email: str, actor: Actor, now: datetime | None = None) -> AdminUserRead:
    """Let a disabled account sign in again, with the password it had (or the one reset meanwhile)."""
    user = get_user(session, email=email)
    was_disabled = user.disabled_at is not None
    user.disabled_at = None
    detail = {"was_disabled": was_disabled}
    _record(session, actor=actor, action=AuditAction.admin_user_enable, user=user, detail=detail)
    session.flush()
    return to_read(user)


def unlock_user(
    session: Session, *, email: str, actor: Actor, secret_box: SecretBox, now: datetime | None = None
) -> AdminUserRead:
    """Forget the account's failed sign-ins, from every address, so that it may sign in at once.

    Only the account's counters go (``sign_in_throttle.release_account``): an address that guessed at many
    accounts stays refused.
    """
    moment = now or utcnow()
    user = get_user(session, email=email)
    was_blocked = release_account(session, secret=counter_secret(secret_box), account=user.email, now=moment)
    _record(session, actor=actor, action=AuditAction.admin_user_unlock, user=user, detail={"was_locked": was_blocked})
    session.flush()
    return to_read(user)


def set_role(session: Session, *, email: str, role: str, actor: Actor, now: datetime | None = None) -> AdminUserRead:
    """Give the account ``role`` (admin or read-only); it applies from the account's next request."""
    chosen = parse_role(role)
    user = get_user(session, email=email)
    previous = user.role
    if previous == AdminRole.admin and chosen != AdminRole.admin and user.disabled_at is None:
        _ensure_another_active_admin(session, user, change="made read-only")
    user.role = chosen
    _record(
        session,
        actor=actor,
        action=AuditAction.admin_user_set_role,
        user=user,
        detail={"from": AdminRole(previous).value, "to": chosen.value},
    )
    session.flush()
    return to_read(user)


def generate_password() -> str:
    """A password no one chose: 24 random url-safe characters."""
    return secrets.token_urlsafe(_GENERATED_PASSWORD_BYTES)


def reset_password(
    session: Session,
    *,
    email: str,
    actor: Actor,
    secret_box: SecretBox,
    password: str | None = None,
    passwords: Passwords | None = None,
    now: datetime | None = None,
) -> PasswordResetRead:
    """Give the account a new password, ``password`` or, when it is None, a generated one returned this once.

    ``passwords`` hashes it: a server passes its bounded :class:`~pippin.admin.passwords.PasswordWork`, a command
    the default.

    The reset also unlocks the account (it is how someone who forgot their password gets back in) and ends its
    sessions (it is also what is done when a password may be known to someone else). A disabled account keeps
    being disabled.
    """
    user = get_user(session, email=email)
    generated = password is None
    new_password = generate_password() if password is None else password
    check_password_strength(new_password)
    user.password_hash = hash_password(new_password, passwords=passwords)
    release_account(session, secret=counter_secret(secret_box), account=user.email, now=now or utcnow())
    ended = _end_sessions(session, user)
    _record(
        session,
        actor=actor,
        action=AuditAction.admin_user_reset_password,
        user=user,
        detail={"generated": generated, "sessions_ended": ended},
    )
    session.flush()
    return PasswordResetRead(admin=to_read(user), password=new_password if generated else None)
