"""Admin API tokens: bearer secrets for the REST API, shown once and stored only as SHA-256 hashes.

A token is ``pippin_`` followed by 32 random bytes in url-safe base64. The prefix lets secret scanners and
people recognise a leaked token; the 256 random bits make a plain SHA-256 enough (there is nothing to brute
force, so no slow hash is needed), and a database copy alone never authenticates.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.admin.schemas import AdminAPITokenRead
from pippin.errors import Conflict, InvalidInput, NotFound
from pippin.store.models import AdminAPIToken, APITokenScope, utcnow
from pippin.text import MAX_API_TOKEN_NAME, check_identifier_name

TOKEN_PREFIX = "pippin_"  # noqa: S105 (a public prefix, not a secret)
# token_urlsafe(32) is 43 characters; anything much longer is not a token of ours and is not hashed at all.
_MAX_BEARER_CHARS = 128
# Writing last_used_at on every request would turn every read into a write; once a minute says enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def validate_token_name(name: str) -> str:
    """The name itself when it is 1-64 letters, digits, ``.``, ``_`` or ``-`` starting with a letter or digit."""
    return check_identifier_name(name, field="The API token name", max_chars=MAX_API_TOKEN_NAME, example="ci-deploy")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _read(token: AdminAPIToken) -> AdminAPITokenRead:
    return AdminAPITokenRead(
        name=token.name,
        scope=token.scope,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
        active=token.revoked_at is None,
    )


def find_api_token(session: Session, *, name: str) -> AdminAPIToken | None:
    return session.scalars(select(AdminAPIToken).where(AdminAPIToken.name == name)).one_or_none()


def get_api_token(session: Session, *, name: str) -> AdminAPIToken:
    token = find_api_token(session, name=validate_token_name(name))
    if token is None:
        raise NotFound(f"There is no API token named {name!r}.", hint="List them with `pippin admin token list`.")
    return token


def parse_scope(scope: str) -> APITokenScope:
    try:
        return APITokenScope(scope)
    except ValueError:
        raise InvalidInput(f"Unknown API token scope {scope[:40]!r}.", hint="Use read-only or read-write.") from None


def create_api_token(
    session: Session,
    *,
    name: str,
    actor: Actor,
    scope: str = APITokenScope.read_only,
    now: datetime | None = None,
) -> tuple[AdminAPITokenRead, str]:
    """Make a token named ``name``; returns its description and the plaintext, which nothing can show again.

    ``scope`` is read-only unless asked otherwise: a token given to a dashboard or a report, the usual first use,
    then cannot change anything if it leaks; a script that changes things is given a read-write one on purpose.
    """
    validate_token_name(name)
    chosen_scope = parse_scope(scope)
    if find_api_token(session, name=name) is not None:
        raise Conflict(
            f"An API token named {name!r} already exists.",
            hint="Choose another name; names stay taken after revocation so the record stays unambiguous.",
        )
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AdminAPIToken(name=name, token_sha256=_digest(plaintext), scope=chosen_scope, created_at=now or utcnow())
    try:
        with session.begin_nested():
            session.add(token)
    except IntegrityError as exc:  # another process took the name between the check and the insert
        raise Conflict(f"An API token named {name!r} already exists.", hint="Choose another name.") from exc
    audit.record_event(
        session, actor=actor, action=AuditAction.admin_api_token_create, target=name, detail={"scope": chosen_scope}
    )
    return _read(token), plaintext


def authenticate_api_token(session: Session, *, bearer: str, now: datetime | None = None) -> AdminAPIToken | None:
    """The active token whose plaintext is ``bearer``, or ``None``; records when it was last used.

    The lookup is by hash, so the database never compares secrets; the final check is constant-time anyway.
    """
    if not bearer.startswith(TOKEN_PREFIX) or len(bearer) > _MAX_BEARER_CHARS:
        return None
    digest = _digest(bearer)
    token = session.scalars(select(AdminAPIToken).where(AdminAPIToken.token_sha256 == digest)).one_or_none()
    if token is None or not hmac.compare_digest(token.token_sha256, digest) or token.revoked_at is not None:
        return None
    moment = now or utcnow()
    if token.last_used_at is None or moment - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = moment
    return token


def list_api_tokens(session: Session) -> list[AdminAPITokenRead]:
    """Every token, active and revoked, oldest first."""
    tokens = session.scalars(select(AdminAPIToken).order_by(AdminAPIToken.created_at, AdminAPIToken.id))
    return [_read(token) for token in tokens]


def revoke_api_token(session: Session, *, name: str, actor: Actor, now: datetime | None = None) -> AdminAPITokenRead:
    """Stop ``name`` from authenticating from the next request on; revoking twice keeps the first date."""
    token = get_api_token(session, name=name)
    audit.record_event(session, actor=actor, action=AuditAction.admin_api_token_revoke, target=token.name)
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
        session.flush()
    return _read(token)
