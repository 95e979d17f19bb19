"""The assignment queue's rows as the runner uses them: due groups, claimed batches, writes a claim still holds.

``dep/assignment_runner.py`` sends batches; this module is the database side of that: which (token, profile,
revision) groups have due devices, the conditional UPDATE that claims a batch (the claim and its lease committed
before the call to Apple), and the writes of a batch's outcome, which touch only devices still carrying the
claim. Coordination between runners is these statements alone (``store/locks.py``'s style): no lock is held
across a call to Apple.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from pippin.dep.assignment import IN_CHUNK, WAITING, active_device
from pippin.store.models import AppleStatus, Device

# A claimed batch whose runner died is due again after this. It is renewed before each further call of the same
# batch, and is longer than one exchange of the client with its default settings lasts when each attempt ends
# within its 30-second timeout (dep/client.py: 6 attempts, at most 5 minutes' Retry-After wait between them).
CLAIM_LEASE = timedelta(minutes=30)


@dataclass(frozen=True)
class Group:
    """Devices sent in the same calls: one token's devices waiting for one revision of one profile."""

    token_id: int
    profile_id: int
    revision: int


@dataclass(frozen=True)
class Batch:
    """Devices one runner claimed: all of them, those an earlier claim had left unsettled, and the claim."""

    serials: list[str]
    unsettled: list[str]
    claim: str


def due_by(cutoff: datetime) -> ColumnElement[bool]:
    """Devices to send at ``cutoff``: waiting, with a profile, and past their retry time (or a dead claim's lease)."""
    return and_(
        active_device(),
        Device.assignment_status.in_(WAITING),
        Device.assigned_profile_id.is_not(None),
        Device.assigned_revision.is_not(None),
        or_(Device.assignment_retry_at.is_(None), Device.assignment_retry_at <= cutoff),
    )


def next_group(session: Session, cutoff: datetime, skip: set[int], skip_groups: set[Group]) -> Group | None:
    """The first group with devices due at ``cutoff``, leaving out the tokens and groups a pass gave up on."""
    query = (
        select(Device.token_id, Device.assigned_profile_id, Device.assigned_revision)
        .where(due_by(cutoff))
        .group_by(Device.token_id, Device.assigned_profile_id, Device.assigned_revision)
        .order_by(Device.token_id, Device.assigned_profile_id, Device.assigned_revision)
    )
    if skip:
        query = query.where(Device.token_id.not_in(skip))
    for token_id, profile_id, revision in session.execute(query):
        if token_id is None or profile_id is None or revision is None:
            continue  # excluded by _due; keeps the types honest
        group = Group(token_id, profile_id, revision)
        if group not in skip_groups:
            return group
    return None


def in_group(group: Group, *, indexed: bool = True) -> ColumnElement[bool]:
    if not indexed:
        # "+ 0" keeps the planners off the token and profile indexes (every queued row matches them) and on the
        # unique serial index: without it SQLite scanned the whole queue for each batch's outcome.
        return and_(
            Device.token_id + 0 == group.token_id,
            Device.assigned_profile_id + 0 == group.profile_id,
            Device.assigned_revision + 0 == group.revision,
        )
    return and_(
        Device.token_id == group.token_id,
        Device.assigned_profile_id == group.profile_id,
        Device.assigned_revision == group.revision,
    )


def claim_batch(
    session: Session, group: Group, *, cutoff: datetime, now: datetime, size: int, after_id: int
) -> tuple[Batch | None, int]:
    """Take up to ``size`` due devices of the group with ids above ``after_id``, giving them a new claim and
    pushing their retry time a lease ahead; returns the batch (``None`` when another runner took every row
    first) and the highest id looked at (the next claim starts there, so a pass reads each row once however
    large the queue).

    The conditional UPDATE is the claim: of two runners racing for the same rows, the second finds them no longer
    due (PostgreSQL re-checks the condition after the first commits; SQLite serialises writers). A device that
    still carried a claim was claimed by a runner that never stored Apple's answer: it is *unsettled*, and is
    looked up at Apple before it is sent again. (Read before the UPDATE: a row another runner changed in
    between is no longer due, so the UPDATE leaves it out.)
    """
    # Only the id is left indexable, so both statements walk the primary key from after_id: the status and group
    # indexes match every queued row, and right after a bulk change (no statistics yet) PostgreSQL picked them
    # and spent seconds per batch. Two statements, not UPDATE ... WHERE id IN (SELECT ... LIMIT), for the same
    # reason.
    due = and_(
        in_group(group, indexed=False),
        Device.apple_status != AppleStatus.removed,
        func.coalesce(Device.assignment_status, "").in_(WAITING),
        func.coalesce(Device.assignment_retry_at, cutoff) <= cutoff,
        Device.id > after_id,
    )
    rows = session.execute(select(Device.id, Device.assignment_claim).where(due).order_by(Device.id).limit(size))
    earlier = {device_id: previous for device_id, previous in rows}
    if not earlier:
        return None, after_id
    claim = secrets.token_hex(16)
    claimed = session.execute(
        update(Device)
        .where(Device.id.in_(list(earlier)), due)
        .values(assignment_retry_at=now + CLAIM_LEASE, assignment_claim=claim)
        .returning(Device.id, Device.serial_number)
        .execution_options(synchronize_session=False)
    ).all()
    if not claimed:
        return None, max(earlier)
    serials = sorted(serial for _, serial in claimed)
    unsettled = sorted(serial for device_id, serial in claimed if earlier[device_id] is not None)
    return Batch(serials=serials, unsettled=unsettled, claim=claim), max(earlier)


def settle(session: Session, group: Group, claim: str, serials: Sequence[str], **values: object) -> list[str]:
    """Write ``values`` to those of ``serials`` that still carry ``claim``; returns them.

    A device whose claim is gone was taken over by another runner after the lease ran out (or given another
    profile meanwhile): what this runner learned about it is left to that runner.
    """
    written: list[str] = []
    for start in range(0, len(serials), IN_CHUNK):
        written.extend(
            session.scalars(
                update(Device)
                .where(
                    in_group(group, indexed=False),
                    Device.serial_number.in_(serials[start : start + IN_CHUNK]),
                    Device.assignment_claim == claim,
                )
                .values(**values)
                .returning(Device.serial_number)
                .execution_options(synchronize_session=False)
            )
        )
    return sorted(written)
