"""Webhook events in nanomdm's and MicroMDM's shape: what a check-in or a command answer records for the receiver.

Tools written for those servers read one JSON object per POST (nanomdm's ``service/webhook/event.json``)::

    {"topic": "mdm.TokenUpdate", "event_id": "…", "created_at": "2026-12-03T08:00:00.123456Z",
     "checkin_event": {"udid": "…", "raw_payload": "<the device's plist, base64>"}}
    {"topic": "mdm.Connect", "event_id": "…", "created_at": "…",
     "acknowledge_event": {"udid": "…", "status": "Acknowledged", "command_uuid": "…", "raw_payload": "…"}}

The topic of a check-in is ``mdm.`` and its ``MessageType``; a command answer's is ``mdm.Connect``. The raw plist
is the body the device sent, as received: like nanomdm, Pippin hands the receiver what the device said, UnlockToken
and bootstrap token included, so the stored event is sealed with the master key.

Both functions write the event in the caller's transaction, and only when ``PIPPIN_WEBHOOK_URL`` is set: an event
exists exactly when what it reports was committed, and ``mdm/webhook_delivery.py`` posts it after the commit.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.errors import ConfigurationError
from pippin.store.models import WebhookEvent, WebhookEventStatus

#: Apple's check-in ``MessageType`` values that have a nanomdm topic; ReturnToService (newer than nanomdm's list)
#: is named the same way.
CHECKIN_MESSAGE_TYPES = frozenset(
    {
        "Authenticate",
        "TokenUpdate",
        "CheckOut",
        "UserAuthenticate",
        "SetBootstrapToken",
        "GetBootstrapToken",
        "DeclarativeManagement",
        "GetToken",
        "ReturnToService",
    }
)
#: The topic of a command answer ("command and report results"): nanomdm's and MicroMDM's.
CONNECT_TOPIC = "mdm.Connect"
_MAX_STATUS_CHARS = 32
_MAX_COMMAND_UUID_CHARS = 64


def checkin_topic(message_type: str) -> str:
    """``mdm.TokenUpdate`` for ``TokenUpdate``; a message type Apple does not define is a bug of the caller."""
    if message_type not in CHECKIN_MESSAGE_TYPES:
        raise ValueError(f"{message_type[:40]!r} is not a check-in message type")
    return f"mdm.{message_type}"


def created_at_text(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as Go's ``time.Time`` marshals it."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_body(*, topic: str, event_id: str, created_at: datetime, section: str, fields: dict[str, str]) -> bytes:
    """The JSON body posted for one event: compact, UTF-8, keys in a fixed order."""
    document = {"topic": topic, "event_id": event_id, "created_at": created_at_text(created_at), section: fields}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _raw_payload(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _record(
    session: Session,
    *,
    box: SecretBox | None,
    topic: str,
    udid: str,
    section: str,
    fields: dict[str, str],
    now: datetime,
) -> None:
    if box is None:
        raise ConfigurationError(
            "Webhook events carry the device's raw messages and are sealed, but no master key was given.",
            hint="Pass the server's SecretBox to the recording call.",
        )
    event_id = str(uuid.uuid4())
    body = event_body(topic=topic, event_id=event_id, created_at=now, section=section, fields=fields)
    session.add(
        WebhookEvent(
            event_id=event_id,
            topic=topic,
            udid=udid,
            created_at=now,
            body_encrypted=box.encrypt(body),
            status=WebhookEventStatus.pending,
            attempts=0,
            next_attempt_at=now,
        )
    )


def record_checkin_event(
    session: Session,
    *,
    settings: Settings,
    message_type: str,
    udid: str,
    topic: str | None,
    raw: bytes,
    now: datetime,
    box: SecretBox | None = None,
) -> None:
    """Record the ``mdm.<message_type>`` event of an accepted check-in, in the caller's transaction.

    Nothing happens unless ``PIPPIN_WEBHOOK_URL`` is set. ``topic`` is the enrollment's APNs push topic: nanomdm's
    event does not carry it (the plist does, as the device sent it), so it is not repeated in the event.
    """
    if settings.webhook_url is None:
        return
    fields = {"udid": udid, "raw_payload": _raw_payload(raw)}
    _record(
        session,
        box=box,
        topic=checkin_topic(message_type),
        udid=udid,
        section="checkin_event",
        fields=fields,
        now=now,
    )


def record_command_answer_event(
    session: Session,
    *,
    settings: Settings,
    udid: str,
    topic: str | None,
    command_uuid: str,
    status: str,
    raw: bytes,
    now: datetime,
    box: SecretBox | None = None,
) -> None:
    """Record the ``mdm.Connect`` event of a command answer (its ``Status`` and ``CommandUUID``), in the caller's
    transaction; nothing happens unless ``PIPPIN_WEBHOOK_URL`` is set. ``topic`` is as for check-ins."""
    if settings.webhook_url is None:
        return
    if not status or len(status) > _MAX_STATUS_CHARS or not status.isprintable():
        raise ValueError("a command answer's Status is Apple's short status text")
    if len(command_uuid) > _MAX_COMMAND_UUID_CHARS or not command_uuid.isprintable():
        raise ValueError("a CommandUUID is short printable text")
    fields = {"udid": udid, "status": status}
    if command_uuid:
        # nanomdm sends the key only when the answer has one (an Idle report has none).
        fields["command_uuid"] = command_uuid
    fields["raw_payload"] = _raw_payload(raw)
    _record(
        session,
        box=box,
        topic=CONNECT_TOPIC,
        udid=udid,
        section="acknowledge_event",
        fields=fields,
        now=now,
    )
