"""The audit log: every change an admin makes, from the console, the API or the CLI, in one table.

Each use case records its own event: the interface says who is acting and from where (an :class:`Actor`) and
the service that makes the change records it in the same transaction, so a change that rolls back leaves no
event, an event never describes something that did not happen, and the same action reads the same from every
interface. Pippin's own scheduled work (the periodic syncs) is not an admin's change and is not recorded here;
the sync history tells it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.admin.actor import Actor, AuditAction, Interface
from pippin.admin.schemas import AuditEventRead
from pippin.errors import InvalidInput
from pippin.store.models import MAX_STORED_INTEGER, AuditEvent, utcnow
from pippin.text import check_text

__all__ = ["Actor", "AuditAction", "Interface", "list_events", "record_event"]

MAX_LIST = 1000
_MAX_DETAIL_VALUE_CHARS = 200


def _clip(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


def _safe_detail(detail: dict[str, Any] | None) -> dict[str, Any]:
    """Scalars only, strings clipped: the log records facts about a change, never payloads."""
    safe: dict[str, Any] = {}
    for key, value in (detail or {}).items():
        if isinstance(value, bool | int | float) or value is None:
            safe[str(key)[:64]] = value
        else:
            safe[str(key)[:64]] = str(value)[:_MAX_DETAIL_VALUE_CHARS]
    return safe


def record_event(
    session: Session,
    *,
    actor: Actor,
    action: AuditAction,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """Add one event to the caller's transaction (the use case's, so it commits or rolls back with the change)."""
    session.add(
        AuditEvent(
            at=now or utcnow(),
            actor=actor.name[:320],
            interface=actor.interface.value,
            action=AuditAction(action).value,
            target=_clip(target, 200),
            source=_clip(actor.source, 255),
            detail=_safe_detail(detail),
        )
    )
    session.flush()


def _read(event: AuditEvent) -> AuditEventRead:
    return AuditEventRead(
        id=event.id,
        at=event.at,
        actor=event.actor,
        interface=event.interface,
        action=event.action,
        target=event.target,
        source=event.source,
        detail=dict(event.detail or {}),
    )


def list_events(
    session: Session,
    *,
    limit: int = 100,
    before_id: int | None = None,
    actor: str | None = None,
    action: AuditAction | None = None,
    target: str | None = None,
) -> list[AuditEventRead]:
    """The newest events first; ``before_id`` continues after the last one of a previous page."""
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIST}.", hint="Page with --before.")
    if before_id is not None and not 1 <= before_id <= MAX_STORED_INTEGER:
        raise InvalidInput(
            f"before must be an event id from 1 to {MAX_STORED_INTEGER}.", hint="Use an id an earlier page listed."
        )
    query = select(AuditEvent)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    if actor:
        check_text(actor, field="The actor filter")
        # Admins are recorded by their lower-cased e-mail; API tokens and OS users as written.
        query = query.where(AuditEvent.actor == (actor.strip().lower() if "@" in actor else actor))
    if action:
        query = query.where(AuditEvent.action == action)
    if target:
        check_text(target, field="The target filter")
        query = query.where(AuditEvent.target == target)
    events = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))
    return [_read(event) for event in events]
