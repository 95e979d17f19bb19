"""Server-side console sessions: the browser holds a random token, the database only its SHA-256.

A session ends when the admin signs out, after :data:`IDLE_TIMEOUT` without a request, or at the latest
:data:`MAX_LIFETIME` after sign-in. Deleting the row ends it at once (e.g. when an account is removed).
The CSRF token of a session is derived from the session's own secret, so it needs no storage and changes
with every sign-in. :func:`sign_in` is the whole use case: the throttled password check of ``admin/users.py``,
then the session, in one transaction with the success it records.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin import users as user_service
from pippin.admin.audit import Actor, AuditAction
from pippin.admin.passwords import PasswordWork
from pippin.crypto.secrets import SecretBox
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import AdminSession, AdminUser, utcnow

COOKIE_NAME = "pippin_session"
IDLE_TIMEOUT = timedelta(hours=2)
MAX_LIFETIME = timedelta(hours=12)
# Writing last_seen_at on every page view would turn every read into a write; once a minute says enough.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
_MAX_COOKIE_CHARS = 128


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(
    session: Session, *, user: AdminUser, actor: Actor, now: datetime | None = None
) -> tuple[AdminSession, str]:
    """A new session for ``user``, signing in as ``actor`` (recorded); returns it and the cookie value, which is
    never stored."""
    moment = now or utcnow()
    token = secrets.token_urlsafe(32)
    record = AdminSession(
        token_sha256=_digest(token),
        user_id=user.id,
        created_at=moment,
        last_seen_at=moment,
        expires_at=moment + MAX_LIFETIME,
        source=(actor.source or "")[:64] or None,
    )
    audit.record_event(session, actor=actor, action=AuditAction.admin_sign_in, target=user.email, now=moment)
    session.add(record)
    # Expired sessions of anyone are swept at sign-in, so the table never grows without bound.
    session.execute(delete(AdminSession).where(AdminSession.expires_at <= moment))
    session.flush()
    return record, token


def sign_in(
    session_factory: SessionFactory,
    *,
    email: str,
    password: str,
    actor: Actor,
    work: PasswordWork,
    secret_box: SecretBox,
    now: datetime,
) -> str:
    """Sign in with ``email`` and ``password`` as ``actor`` (anonymous so far, from its ``source`` address);
    returns the new session's cookie value. Commits in steps (see ``users.check_password``) and raises its
    errors; the session and the recorded success commit together."""
    checked = user_service.check_password(
        session_factory, email=email, password=password, actor=actor, work=work, secret_box=secret_box, now=now
    )
    with transaction(session_factory) as session:
        user = user_service.record_sign_in(session, checked=checked, now=now)
        signed_in = Actor(name=user.email, interface=actor.interface, source=actor.source)
        _, cookie = start_session(session, user=user, actor=signed_in, now=now)
    return cookie


def find_session(
    session: Session, *, cookie: str | None, now: datetime | None = None
) -> tuple[AdminSession, AdminUser] | None:
    """The live session and its admin for a cookie value, or ``None`` (missing, unknown, idle or expired)."""
    if not cookie or len(cookie) > _MAX_COOKIE_CHARS:
        return None
    moment = now or utcnow()
    digest = _digest(cookie)
    row = session.execute(
        select(AdminSession, AdminUser)
        .join(AdminUser, AdminUser.id == AdminSession.user_id)
        .where(AdminSession.token_sha256 == digest)
    ).one_or_none()
    if row is None:
        return None
    record, user = row[0], row[1]
    if not hmac.compare_digest(record.token_sha256, digest):
        return None
    # Disabling an account deletes its sessions; one started by a sign-in racing the disable ends here.
    if record.expires_at <= moment or record.last_seen_at + IDLE_TIMEOUT <= moment or user.disabled_at is not None:
        session.delete(record)
        session.flush()
        return None
    if moment - record.last_seen_at >= LAST_SEEN_RESOLUTION:
        record.last_seen_at = moment
    return record, user


def end_session(session: Session, *, cookie: str | None) -> None:
    """Sign out: the session stops working at once. Unknown cookies are ignored (signing out twice is fine)."""
    if cookie and len(cookie) <= _MAX_COOKIE_CHARS:
        session.execute(delete(AdminSession).where(AdminSession.token_sha256 == _digest(cookie)))


def csrf_token_for(cookie: str) -> str:
    """The CSRF token that forms of this session must carry: an HMAC keyed by the session's secret.

    A page served to the session embeds it; another site can neither read it (same-origin policy) nor
    compute it (it never sees the cookie).
    """
    return hmac.new(cookie.encode("utf-8"), b"pippin-console-csrf", hashlib.sha256).hexdigest()
