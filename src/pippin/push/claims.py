"""The push queue's rows as the sender uses them: the claim of due pushes, and the writes a claim still holds.

``push/delivery.py`` sends; this module is the database side of that, in ``dep/assignment_claims.py``'s shape.
A claim is one transaction: the due rows are read with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL: a second sender
skips the rows the first is claiming instead of waiting for them; SQLite serialises writers, and ignores the
clause), then one conditional UPDATE gives them a new claim, counts the attempt and moves their next attempt a
lease ahead. The claim is committed before any push is sent; an outcome is written only to a row that still
carries its claim, so a sender whose lease ran out (it crashed, or hung) can no longer overwrite the sender that
took the push over.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, select, update
from sqlalchemy.orm import Session

from pippin.store.models import Enrollment, EnrollmentStatus, PushDelivery

#: The table itself, for the writes of many rows in one executemany (Core, not the ORM's bulk modes).
PUSHES = cast(Table, PushDelivery.__table__)

#: Rows per IN (...) list: well below SQLite's and PostgreSQL's limits on bound parameters.
IN_CHUNK = 500


@dataclass(frozen=True)
class ClaimedPush:
    """A push this sender claimed: where it goes (``token`` and ``push_magic`` from the enrollment) and its state."""

    udid: str
    token: str | None
    push_magic: str | None = field(repr=False)
    enrolled: bool
    refused_token: str | None
    expires_at: datetime | None
    attempts: int

    @property
    def pushable(self) -> bool:
        """Enrolled, with a token and PushMagic, and not the token APNs refused for good."""
        return bool(self.enrolled and self.token and self.push_magic and self.token != self.refused_token)


def claim_due(session: Session, *, now: datetime, lease: timedelta, limit: int) -> tuple[str, list[ClaimedPush]]:
    """Claim up to ``limit`` pushes due at ``now`` (oldest first); returns the claim and the pushes it took.

    The caller commits before sending. Each claimed push counts one attempt now, so a push whose sender dies
    every time still reaches its last attempt and ends.
    """
    due = and_(PushDelivery.next_attempt_at.is_not(None), PushDelivery.next_attempt_at <= now)
    udids = list(
        session.scalars(
            select(PushDelivery.udid)
            .where(due)
            .order_by(PushDelivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    claim = secrets.token_hex(16)
    if not udids:
        return claim, []
    claimed = session.execute(
        update(PushDelivery)
        .where(PushDelivery.udid.in_(udids), due)
        .values(claim=claim, attempts=PushDelivery.attempts + 1, next_attempt_at=now + lease)
        .returning(PushDelivery.udid, PushDelivery.expires_at, PushDelivery.attempts, PushDelivery.refused_token)
        .execution_options(synchronize_session=False)
    ).all()
    states = {udid: (expires_at, attempts, refused) for udid, expires_at, attempts, refused in claimed}
    enrollments = session.execute(
        select(Enrollment.udid, Enrollment.status, Enrollment.push_token, Enrollment.push_magic).where(
            Enrollment.udid.in_(list(states))
        )
    ).all()
    pushes = [
        ClaimedPush(
            udid=udid,
            token=token,
            push_magic=magic,
            enrolled=status is EnrollmentStatus.enrolled,
            refused_token=states[udid][2],
            expires_at=states[udid][0],
            attempts=states[udid][1],
        )
        for udid, status, token, magic in enrollments
    ]
    return claim, sorted(pushes, key=lambda push: push.udid)


def settle(
    session: Session,
    claim: str,
    rows: Sequence[dict[str, Any]],
    values: Mapping[str, Any],
    *,
    where: ColumnElement[bool] | None = None,
) -> int:
    """Write ``values`` (bound per row from ``rows``' ``b_*`` keys, or shared) to the rows still holding ``claim``.

    Each row of ``rows`` names its ``b_udid``; returns how many rows were written (a row whose claim is gone was
    taken over after the lease ran out, and what this sender learned is left to the one that took it).
    """
    if not rows:
        return 0
    statement = update(PUSHES).where(PUSHES.c.udid == bindparam("b_udid"), PUSHES.c.claim == claim).values(**values)
    if where is not None:
        statement = statement.where(where)
    result = session.connection().execute(statement, list(rows))
    return int(getattr(result, "rowcount", 0) or 0)


def pending_values(*, now: datetime, expires_at: datetime) -> dict[str, Any]:
    """A new pending push: wanted now, due now, no attempt yet."""
    return {"wanted_at": now, "expires_at": expires_at, "attempts": 0, "next_attempt_at": now, "claim": None}


#: The columns of a push no longer pending.
NOT_PENDING: dict[str, Any] = {
    "wanted_at": None,
    "expires_at": None,
    "attempts": 0,
    "next_attempt_at": None,
    "claim": None,
}
