"""The webhook queue's rows as the deliverer uses them: the claim of due events, and the writes a claim still holds.

``mdm/webhook_delivery.py`` posts; this module is the database side of it, in ``push/claims.py``'s shape. A claim
is one transaction: the due rows are read with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL: a second deliverer skips the
rows the first is claiming instead of waiting; SQLite serialises writers with ``BEGIN IMMEDIATE`` and ignores the
clause), then one conditional UPDATE gives them a new claim, counts the attempt and moves their next attempt a lease
ahead. The claim commits before any POST; an outcome is written only to a row that still carries its claim, so a
deliverer whose lease ran out (it crashed, or hung) cannot overwrite the one that took the event over.

A device's events go out in the order they were recorded: only the oldest pending event of a device can be
claimed, so its next one waits until that one is delivered or given up, whichever process holds it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, exists, select, update
from sqlalchemy.orm import Session, aliased

from pippin.store.models import WebhookEvent

#: The table itself, for the writes of many rows in one executemany (Core, not the ORM's bulk modes).
EVENTS = cast(Table, WebhookEvent.__table__)


@dataclass(frozen=True)
class ClaimedEvent:
    """An event this deliverer claimed: its sealed body and what decides its retries."""

    id: int
    event_id: str
    topic: str
    udid: str
    created_at: datetime
    attempts: int
    body_encrypted: bytes = field(repr=False)


def claim_due(session: Session, *, now: datetime, lease: timedelta, limit: int) -> tuple[str, list[ClaimedEvent]]:
    """Claim up to ``limit`` events due at ``now``, each the oldest pending one of its device; the caller commits
    before posting. Each claimed event counts one attempt now, so an event whose deliverer dies every time still
    ends (it reaches its maximum age)."""
    older = aliased(WebhookEvent)
    waits_for_older = exists().where(
        older.udid == WebhookEvent.udid, older.id < WebhookEvent.id, older.next_attempt_at.is_not(None)
    )
    due = and_(WebhookEvent.next_attempt_at.is_not(None), WebhookEvent.next_attempt_at <= now)
    ids = list(
        session.scalars(
            select(WebhookEvent.id)
            .where(due, ~waits_for_older)
            .order_by(WebhookEvent.next_attempt_at, WebhookEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    claim = secrets.token_hex(16)
    if not ids:
        return claim, []
    rows = session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(ids), due)
        .values(claim=claim, attempts=WebhookEvent.attempts + 1, next_attempt_at=now + lease)
        .returning(
            WebhookEvent.id,
            WebhookEvent.event_id,
            WebhookEvent.topic,
            WebhookEvent.udid,
            WebhookEvent.created_at,
            WebhookEvent.attempts,
            WebhookEvent.body_encrypted,
        )
        .execution_options(synchronize_session=False)
    ).all()
    events = [ClaimedEvent(*row) for row in rows]
    return claim, sorted(events, key=lambda event: event.id)


def settle(session: Session, claim: str, rows: Sequence[dict[str, Any]], values: Mapping[str, Any]) -> int:
    """Write ``values`` (bound per row from ``rows``' ``b_*`` keys, or shared) to the rows still holding ``claim``.

    Each row of ``rows`` names its ``b_id``; returns how many were written (a row whose claim is gone was taken
    over after the lease ran out, and what this deliverer learned is left to the one that took it).
    """
    if not rows:
        return 0
    statement = update(EVENTS).where(EVENTS.c.id == bindparam("b_id"), EVENTS.c.claim == claim).values(**values)
    result = session.connection().execute(statement, list(rows))
    return int(getattr(result, "rowcount", 0) or 0)
