"""`pippin push test`: one push to a raw device token, now, with the stored certificate, and APNs's answer.

For an operator checking the certificate, the network path to APNs and a token, without a device record. The
push is sent after the certificate is read and its transaction closed; the audit event is written after APNs
answered, in a transaction of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from pippin.admin.audit import Actor, AuditAction, record_event
from pippin.config import Settings
from pippin.errors import NotFound
from pippin.push.apns import Notification, check_push_magic, normalise_token
from pippin.push.delivery import IdentityLoader, PushSender
from pippin.push.schemas import PushTestRead
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import utcnow


def send_test_push(
    session_factory: SessionFactory,
    *,
    token: str,
    push_magic: str | None,
    settings: Settings,
    sender: PushSender,
    load_identity: IdentityLoader,
    actor: Actor,
    clock: Callable[[], datetime] = utcnow,
) -> PushTestRead:
    """Send one push to ``token`` (hex); without a PushMagic a random one (the device then ignores the push,
    but APNs still judges the token and the certificate)."""
    hex_token = normalise_token(token)
    magic = check_push_magic(push_magic) if push_magic is not None else str(uuid.uuid4()).upper()
    with read_transaction(session_factory) as session:
        identity = load_identity(session)
    if identity is None:
        raise NotFound(
            "There is no push certificate Pippin may use (none uploaded, expired, or refused by APNs).",
            hint="Upload the APNs push certificate first, then try again.",
        )
    now = clock()
    outcome = sender.send_all(identity, [Notification(hex_token, magic, now + settings.push_expiration)])[0]
    with transaction(session_factory) as session:
        detail = {"result": outcome.result.value, "status": outcome.status, "reason": outcome.reason}
        record_event(session, actor=actor, action=AuditAction.push_test, target=hex_token[:8], detail=detail, now=now)
    return PushTestRead(
        result=outcome.result,
        status=outcome.status,
        reason=outcome.reason,
        apns_id=outcome.apns_id,
        topic=identity.topic,
        apns_base_url=settings.apns_base_url,
    )
