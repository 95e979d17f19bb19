"""DEP server tokens: the key pair for Apple, the uploaded token, its health, and clients built from it.

The flow (reference section 1): :func:`create_keypair` makes an RSA key and a self-signed certificate the admin
uploads to an MDM server in Apple Business Manager; Apple encrypts the server token (.p7m) to it;
:func:`upload_token` decrypts it, proves it with ``GET /account`` and stores it encrypted. A new key pair waits as
*pending* and replaces the current one only once a token decrypts with it, so asking for a key again never
breaks a working token (nanodep's staging key, reference 1.1).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.admin.master_key import confirm_master_key
from pippin.config import Settings
from pippin.crypto import cms
from pippin.crypto.certs import build_self_signed_certificate, certificate_to_pem, load_certificate_pem
from pippin.crypto.keys import KeyGenerator, generate_private_key, open_private_key, seal_private_key
from pippin.crypto.secrets import SecretBox
from pippin.dep.client import DEPClient, OAuthCredentials
from pippin.dep.errors import AccessDenied, DEPAuthFailure, DEPError, TermsNotSigned, TokenExpired, TokenRejected
from pippin.dep.schemas import DEPTokenRead, ExpiryLevel, TokenUploadResult
from pippin.dep.wire import Account
from pippin.errors import Conflict, InvalidInput, NotFound
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import DEPToken, TokenStatus, utcnow
from pippin.text import (
    DEP_TOKEN_CERTIFICATE_PREFIX,
    MAX_DEP_TOKEN_NAME,
    check_identifier_name,
    check_text,
    email_problem,
)

logger = logging.getLogger(__name__)

MAX_TOKEN_FILE_BYTES = 1_000_000
#: What names were before the rule in ``pippin.text``: tokens so named stay reachable, none is made anew.
_EARLIER_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_CREDENTIAL_FIELDS = ("consumer_key", "consumer_secret", "access_token", "access_secret")
_BEGIN, _END = "-----BEGIN MESSAGE-----", "-----END MESSAGE-----"
WARNING_DAYS, ALARM_DAYS = 30, 7
#: A pending certificate is printed again rather than replaced while it has this long left (see create_keypair).
_PENDING_REUSE_MARGIN = timedelta(days=30)
#: Apple refused the token for a reason an admin fixes at Apple (terms, access, a newer download).
FIXABLE_REFUSALS = frozenset({TokenStatus.terms_not_signed, TokenStatus.access_denied, TokenStatus.token_rejected})
#: Every status that means Apple refused the token (reference sections 1.4, 2.2); a successful call clears them.
REFUSED_STATUSES = FIXABLE_REFUSALS | {TokenStatus.expired}


def _next_steps(name: str) -> str:
    return (
        f"Upload the .pem from `pippin dep keypair {name}` to this MDM server in Apple Business Manager "
        "(Preferences, Your MDM Servers, Edit, Upload Public Key), then download a new token and upload it here."
    )


def validate_name(name: str) -> str:
    """``name`` when a new token may be called so (``pippin.text``'s identifier rule: it is also the common
    name of the key pair's certificate, so at most :data:`~pippin.text.MAX_DEP_TOKEN_NAME` characters)."""
    return check_identifier_name(name, field="The DEP token name", max_chars=MAX_DEP_TOKEN_NAME, example="acme-ios")


def validate_existing_name(name: str) -> str:
    """``name`` when a token may already be called so: the rule of :func:`validate_name`, or the looser one of
    earlier releases (e.g. a leading ``-``), so such a token can still be read, renewed and synced."""
    check_text(name, field="The DEP token name")
    if _EARLIER_NAME.fullmatch(name) and name not in (".", ".."):
        return name
    return validate_name(name)


def _common_name(name: str) -> str:
    # A name of an earlier release may be longer than the rule allows now; X.509 caps the common name at 64.
    return f"{DEP_TOKEN_CERTIFICATE_PREFIX}{name}"[:64]


def find_token(session: Session, *, name: str) -> DEPToken | None:
    check_text(name, field="The DEP token name")
    return session.scalars(select(DEPToken).where(DEPToken.name == name)).one_or_none()


def get_token(session: Session, *, name: str) -> DEPToken:
    """The token called ``name``; NotFound says how to create one (a malformed name is refused, never echoed)."""
    token = find_token(session, name=validate_existing_name(name))
    if token is None:
        raise NotFound(
            f"There is no DEP token named {name!r}.",
            hint=f"Run `pippin dep keypair {name}` to start connecting an Apple MDM server, or `pippin dep tokens`.",
        )
    return token


def create_keypair(
    session: Session, *, name: str, box: SecretBox, actor: Actor, generate_key: KeyGenerator | None = None
) -> str:
    """The certificate PEM the admin uploads to Apple for token ``name`` (created, status awaiting_token, if new).

    The key pair is kept as pending. A pending pair that is still well within its validity is printed again
    rather than replaced: the admin may already have uploaded that .pem to Apple, and a new one would make the
    token Apple encrypts to it undecryptable. ``generate_key`` makes the key (the server injects its own).
    Recorded in the audit log for ``actor``, as a renewal when the token already holds one from Apple.
    """
    token = find_token(session, name=validate_existing_name(name))
    if token is None:
        validate_name(name)
        token = DEPToken(name=name, status=TokenStatus.awaiting_token)
        session.add(token)
    audit.record_event(
        session,
        actor=actor,
        action=AuditAction.dep_keypair_create,
        target=name,
        detail={"renewal": token.credentials_encrypted is not None},
    )
    now = utcnow()
    if token.pending_certificate_pem and token.pending_private_key_encrypted:
        pending = load_certificate_pem(token.pending_certificate_pem)
        if pending.not_valid_after_utc > now + _PENDING_REUSE_MARGIN:
            return token.pending_certificate_pem
    confirm_master_key(session, box)
    key = (generate_key or generate_private_key)()
    certificate_pem = certificate_to_pem(build_self_signed_certificate(key, common_name=_common_name(name), now=now))
    token.pending_private_key_encrypted = seal_private_key(key, box)
    token.pending_certificate_pem = certificate_pem
    session.flush()
    logger.info("DEP key pair created", extra={"fields": {"token": name}})
    return certificate_pem


def _key_pairs(token: DEPToken, box: SecretBox) -> list[tuple[rsa.RSAPrivateKey, x509.Certificate, bool]]:
    """(key, certificate, is_pending), pending first: a fresh key pair is the one a new token is meant for."""
    pairs = []
    if token.pending_private_key_encrypted and token.pending_certificate_pem:
        pending_key = open_private_key(token.pending_private_key_encrypted, box)
        pairs.append((pending_key, load_certificate_pem(token.pending_certificate_pem), True))
    if token.private_key_encrypted and token.certificate_pem:
        current_key = open_private_key(token.private_key_encrypted, box)
        pairs.append((current_key, load_certificate_pem(token.certificate_pem), False))
    return pairs


def _decrypt(token: DEPToken, p7m: bytes, box: SecretBox) -> tuple[bytes, bool]:
    """The token's plaintext and whether the pending key pair opened it."""
    where_to_get_it = "Upload the *_smime.p7m file from Apple Business Manager (Your MDM Servers, Download Token)."
    pairs = _key_pairs(token, box)
    if not pairs:
        raise Conflict(
            f"DEP token {token.name!r} has no key pair to decrypt a token with.", hint=_next_steps(token.name)
        )
    try:
        for key, certificate, is_pending in pairs:
            try:
                return cms.decrypt_enveloped(p7m, private_key=key, certificate=certificate), is_pending
            except cms.WrongRecipient:
                continue
    except cms.DecryptionFailed as exc:
        raise InvalidInput("This token file is damaged and does not decrypt.", hint="Download it again.") from exc
    except cms.CMSError as exc:
        raise InvalidInput(f"This file is not a DEP server token. {exc.message}", hint=where_to_get_it) from exc
    raise InvalidInput(
        f"This token is encrypted to a different key than {token.name!r} has.", hint=_next_steps(token.name)
    )


def _read_fields(plaintext: bytes, *, now: datetime) -> tuple[OAuthCredentials, datetime]:
    """The four OAuth values and the expiry from the decrypted token (reference 1.3), each checked."""
    retry = "Download the token again from Apple Business Manager and upload the new file."
    try:
        text = cms.mime_text_body(plaintext)
    except cms.CMSError as exc:
        raise InvalidInput(f"The decrypted token is not readable. {exc.message}", hint=retry) from exc
    begin, end = text.find(_BEGIN), text.find(_END)
    if begin >= 0 and end > begin:
        text = text[begin + len(_BEGIN) : end]
    try:
        fields = json.loads(text)
    except (ValueError, RecursionError) as exc:  # a hostile file may nest arrays deeper than the parser recurses
        raise InvalidInput("The decrypted token does not hold the JSON Apple puts in it.", hint=retry) from exc
    if not isinstance(fields, dict):
        raise InvalidInput("The decrypted token's JSON is not an object.", hint=retry)
    for field in (*_CREDENTIAL_FIELDS, "access_token_expiry"):
        value = fields.get(field)
        if not isinstance(value, str) or not value.strip():
            state = "missing" if value is None else "empty or not text"
            raise InvalidInput(f"The token's {field} is {state}.", hint=retry)
    try:
        expires_at = datetime.fromisoformat(fields["access_token_expiry"])
    except ValueError as exc:
        raise InvalidInput("The token's access_token_expiry is not a date.", hint=retry) from exc
    expires_at = expires_at.replace(tzinfo=UTC) if expires_at.tzinfo is None else expires_at.astimezone(UTC)
    if expires_at <= now:
        raise InvalidInput(
            f"This token expired on {expires_at:%Y-%m-%d %H:%M} UTC.",
            hint="Download a new token for this MDM server in Apple Business Manager and upload that one.",
        )
    credentials = OAuthCredentials(**{field: fields[field] for field in _CREDENTIAL_FIELDS}, expires_at=expires_at)
    return credentials, expires_at


def _credentials_json(credentials: OAuthCredentials) -> bytes:
    return json.dumps({field: getattr(credentials, field) for field in _CREDENTIAL_FIELDS}).encode()


def _new_client(credentials: OAuthCredentials, settings: Settings, transport: httpx.BaseTransport | None) -> DEPClient:
    return DEPClient(
        base_url=settings.dep_base_url,
        credentials=credentials,
        timeout=settings.dep_timeout,
        max_retries=settings.dep_max_retries,
        transport=transport,
    )


@dataclass(frozen=True)
class _TokenAsRead:
    """What an upload or account check read before asking Apple, to tell whether the token changed meanwhile."""

    token_id: int
    key_pairs: tuple[bytes | None, bytes | None]
    server_uuid: str | None
    uploaded_at: datetime | None
    credentials_encrypted: bytes | None

    @classmethod
    def of(cls, token: DEPToken) -> _TokenAsRead:
        return cls(
            token_id=token.id,
            key_pairs=(token.private_key_encrypted, token.pending_private_key_encrypted),
            server_uuid=token.server_uuid,
            uploaded_at=token.uploaded_at,
            credentials_encrypted=token.credentials_encrypted,
        )


def _reread(session: Session, seen: _TokenAsRead, *, name: str) -> DEPToken:
    """The token again, in the write transaction; NotFound if it was deleted while Apple was asked."""
    token = session.get(DEPToken, seen.token_id, with_for_update=True)
    if token is None or token.name != name:
        raise NotFound(
            f"DEP token {name!r} was deleted while Apple was being asked; nothing was stored.",
            hint=f"Run `pippin dep keypair {name}` to connect the Apple MDM server again.",
        )
    return token


def _check_upload(*, name: str, p7m: bytes, apple_id: str) -> str:
    """The Apple ID, trimmed, once the name, the file's size and the Apple ID are acceptable."""
    validate_existing_name(name)
    if len(p7m) > MAX_TOKEN_FILE_BYTES:
        raise InvalidInput(
            f"This file is {len(p7m):,} bytes; a DEP server token is a few kilobytes.",
            hint="Upload the *_smime.p7m file downloaded from Apple Business Manager.",
        )
    check_text(apple_id, field="The Apple ID")  # before trimming, which would drop a line separator unseen
    problem = email_problem(apple_id.strip())
    if problem is not None:
        raise InvalidInput(
            f"The Apple ID {problem}; it must be the e-mail address of the Apple Business Manager account that "
            "downloaded the token.",
            hint="Pass it with --apple-id, e.g. --apple-id admin@example.com.",
        )
    return apple_id.strip()


def upload_token(
    session_factory: SessionFactory,
    *,
    name: str,
    p7m: bytes,
    apple_id: str,
    box: SecretBox,
    settings: Settings,
    force: bool = False,
    transport: httpx.BaseTransport | None = None,
    actor: Actor,
) -> TokenUploadResult:
    """Decrypt, check and prove the token file ``p7m`` with Apple, then store it (encrypted) as token ``name``.

    Renewal is an upload for an existing name: it must belong to the same Apple MDM server unless ``force``, and
    keeps devices, profiles and the sync cursor. Any failure raises before anything is written.

    This takes a session factory and commits, because no transaction may stay open while Apple answers: it
    reads the token's key pairs in a read transaction and closes it, asks Apple (``GET /account``) with none
    open, then stores the token in a new short write transaction, with its audit event for ``actor``. That
    transaction reads the token again: if it was deleted meanwhile the upload raises
    NotFound, and if its key pairs or its upload changed meanwhile (another upload or a new key pair) it raises
    Conflict and stores nothing, since this file was checked against what is no longer there.
    """
    apple_id = _check_upload(name=name, p7m=p7m, apple_id=apple_id)
    now = utcnow()
    with read_transaction(session_factory) as session:
        token = get_token(session, name=name)
        seen = _TokenAsRead.of(token)
        plaintext, opened_with_pending = _decrypt(token, p7m, box)
    credentials, expires_at = _read_fields(plaintext, now=now)
    with _new_client(credentials, settings, transport) as client:
        account = client.account()
    if seen.server_uuid and seen.server_uuid != account.server_uuid and not force:
        raise Conflict(
            f"This token belongs to Apple MDM server {account.server_name!r} ({account.server_uuid}), but "
            f"{name!r} is linked to {token.server_name!r} ({seen.server_uuid}).",
            hint=f"Upload it under another name (`pippin dep keypair NEWNAME` first), or pass --force to relink "
            f"{name!r}: its sync then starts over with a full fetch.",
        )
    with transaction(session_factory) as session:
        confirm_master_key(session, box)
        token = _reread(session, seen, name=name)
        if _TokenAsRead.of(token) != seen:
            raise Conflict(
                f"DEP token {name!r} changed while Apple was being asked (another upload or a new key pair); "
                "this file was not stored.",
                hint="Check `pippin dep tokens`, then upload the file again if it is still the one to use.",
            )
        result = _store_upload(
            token,
            account,
            credentials,
            box=box,
            apple_id=apple_id,
            expires_at=expires_at,
            now=now,
            opened_with_pending=opened_with_pending,
        )
        session.flush()
        audit.record_event(
            session,
            actor=actor,
            action=AuditAction.dep_token_upload,
            target=name,
            detail={"server": result.token.server_name, "force": force},
        )
    logger.info("DEP token uploaded", extra={"fields": {"token": name, "server_uuid": account.server_uuid}})
    return result


def _store_upload(
    token: DEPToken,
    account: Account,
    credentials: OAuthCredentials,
    *,
    box: SecretBox,
    apple_id: str,
    expires_at: datetime,
    now: datetime,
    opened_with_pending: bool,
) -> TokenUploadResult:
    if token.server_uuid and token.server_uuid != account.server_uuid:
        # Another server's cursor means nothing to this one; a full fetch decides which devices remain.
        token.cursor = token.cursor_kind = token.cursor_issued_at = None
    if opened_with_pending:
        token.private_key_encrypted = token.pending_private_key_encrypted
        token.certificate_pem = token.pending_certificate_pem
        token.pending_private_key_encrypted = token.pending_certificate_pem = None
    _store_account(token, account)
    token.credentials_encrypted = box.encrypt(_credentials_json(credentials))
    token.expires_at = expires_at
    token.apple_id = apple_id
    token.uploaded_at = now
    token.status = TokenStatus.ok
    token.last_error = token.last_error_at = None
    warnings = []
    if account.admin_id and account.admin_id.casefold() != apple_id.casefold():
        warnings.append(
            f"Apple says this token was downloaded by {account.admin_id}, not {apple_id}. Renew it next year "
            f"signed in to Apple Business Manager as {account.admin_id}, or upload it again with "
            f"--apple-id {account.admin_id}."
        )
    return TokenUploadResult(token=to_read(token, now=now), warnings=warnings)


def _store_account(token: DEPToken, account: Account) -> None:
    token.server_uuid = account.server_uuid
    token.server_name = account.server_name
    token.admin_id = account.admin_id
    token.org_name = account.org_name
    token.org_email = account.org_email
    token.org_phone = account.org_phone
    token.org_address = account.org_address
    token.org_id = account.org_id
    token.org_type = account.org_type
    token.fetch_limit = account.limit_for("/server/devices")
    token.sync_limit = account.limit_for("/devices/sync")


def expiry_level(expires_at: datetime, *, now: datetime) -> ExpiryLevel:
    left = expires_at - now
    if left <= timedelta(0):
        return ExpiryLevel.expired
    if left < timedelta(days=ALARM_DAYS):
        return ExpiryLevel.alarm
    return ExpiryLevel.warning if left < timedelta(days=WARNING_DAYS) else ExpiryLevel.ok


def to_read(token: DEPToken, *, now: datetime | None = None) -> DEPTokenRead:
    now = now or utcnow()
    expires_at = token.expires_at
    return DEPTokenRead(
        name=token.name,
        server_uuid=token.server_uuid,
        server_name=token.server_name,
        org_name=token.org_name,
        apple_id=token.apple_id,
        admin_id=token.admin_id,
        expires_at=expires_at,
        days_left=None if expires_at is None else math.floor((expires_at - now) / timedelta(days=1)),
        expiry_level=None if expires_at is None else expiry_level(expires_at, now=now),
        status=TokenStatus.expired if expires_at is not None and expires_at <= now else token.status,
        last_error=token.last_error,
        last_error_at=token.last_error_at,
        uploaded_at=token.uploaded_at,
        has_pending_keypair=token.pending_private_key_encrypted is not None,
    )


def list_tokens(session: Session, *, now: datetime | None = None) -> list[DEPTokenRead]:
    return [to_read(token, now=now) for token in session.scalars(select(DEPToken).order_by(DEPToken.name))]


def read_token(session: Session, *, name: str, now: datetime | None = None) -> DEPTokenRead:
    return to_read(get_token(session, name=name), now=now)


_REFUSALS: dict[str, type[DEPAuthFailure]] = {
    TokenStatus.terms_not_signed: TermsNotSigned,
    TokenStatus.access_denied: AccessDenied,
    TokenStatus.token_rejected: TokenRejected,
    TokenStatus.expired: TokenExpired,
}


def _usable_credentials(token: DEPToken, box: SecretBox, *, now: datetime, check_status: bool) -> OAuthCredentials:
    if token.credentials_encrypted is None or token.status == TokenStatus.awaiting_token:
        failure = DEPAuthFailure(
            f"No server token has been uploaded for {token.name!r} yet.", hint=_next_steps(token.name)
        )
        failure.token_status = TokenStatus.awaiting_token
        raise failure
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenExpired.at(token.expires_at)
    refusal = _REFUSALS.get(token.status)
    if check_status and refusal is not None:
        raise refusal(hint=f"{refusal.default_hint} Then run `pippin dep account {token.name}` to check it.")
    fields = json.loads(box.decrypt(token.credentials_encrypted))
    return OAuthCredentials(**{field: fields[field] for field in _CREDENTIAL_FIELDS}, expires_at=token.expires_at)


def open_client(
    token: DEPToken, *, box: SecretBox, settings: Settings, transport: httpx.BaseTransport | None = None
) -> DEPClient:
    """A DEP client for ``token``; refuses (raises the DEPAuthFailure) when it expired or Apple refused it."""
    credentials = _usable_credentials(token, box, now=utcnow(), check_status=True)
    return _new_client(credentials, settings, transport)


#: How the services reach Apple for a token: the sync and the assignment runner each take one of these.
DEPClientFactory = Callable[[DEPToken], DEPClient]


def dep_client_factory(
    *, box: SecretBox, settings: Settings, transport: httpx.BaseTransport | None = None
) -> DEPClientFactory:
    """The usual :data:`DEPClientFactory`: :func:`open_client` with the master key and settings given once."""

    def open_for(token: DEPToken) -> DEPClient:
        return open_client(token, box=box, settings=settings, transport=transport)

    return open_for


def record_dep_failure(token: DEPToken, error: DEPError, *, now: datetime) -> None:
    """Remember what went wrong, with the fix; an auth failure also sets the token's status."""
    if isinstance(error, DEPAuthFailure):
        token.status = error.token_status
    token.last_error = str(error)
    token.last_error_at = now


def record_dep_success(token: DEPToken, *, now: datetime) -> None:
    """Apple accepted the token again: an auth status returns to ok and the last error is cleared."""
    if token.status in REFUSED_STATUSES:
        token.status = TokenStatus.ok
    token.last_error = token.last_error_at = None


def fetch_account(
    session_factory: SessionFactory,
    *,
    name: str,
    box: SecretBox,
    settings: Settings,
    transport: httpx.BaseTransport | None = None,
) -> Account:
    """``GET /account`` for token ``name``, recording the outcome on the token.

    Unlike :func:`open_client` this also calls Apple for a token Apple refused before: it is how an admin checks
    a fix (terms accepted, role restored) and brings the token back to ok. On failure the outcome is recorded
    (committed) and the error raised.

    This takes a session factory and commits: it reads the credentials in a read transaction and closes it,
    asks Apple with no transaction open, then records the outcome in a new short write transaction. If the
    token was deleted meanwhile that raises NotFound; if it was replaced meanwhile (a new upload), Apple's answer
    is about credentials no longer stored, so nothing is recorded and the answer (or Apple's error) is returned
    as it came.
    """
    now = utcnow()
    with read_transaction(session_factory) as session:
        token = get_token(session, name=name)
        seen = _TokenAsRead.of(token)
        try:
            credentials: OAuthCredentials | None = _usable_credentials(token, box, now=now, check_status=False)
        except DEPError as refused:
            credentials, failure = None, refused
    account: Account | None = None
    if credentials is not None:
        try:
            with _new_client(credentials, settings, transport) as client:
                account = client.account()
        except DEPError as error:
            failure = error
    with transaction(session_factory) as session:
        confirm_master_key(session, box)
        token = _reread(session, seen, name=name)
        if _TokenAsRead.of(token) == seen:
            if account is None:
                record_dep_failure(token, failure, now=now)
            else:
                record_dep_success(token, now=now)
                _store_account(token, account)
    if account is None:
        raise failure
    return account
