"""The command queue's upkeep: waiting commands past their expiry marked ``expired``, finished ones pruned.

Reference ``store/models/command.py``. A command waits at most its ``expires_at`` (``PIPPIN_COMMAND_EXPIRATION``
unless queued with another); once past it, :func:`expire_commands` marks it ``expired`` with its ``finished_at``,
whether or not the device ever connects again (``mdm/connect.py`` still expires one it reaches first). A finished
command (answered, expired or canceled) is kept with its answer for ``PIPPIN_COMMAND_RETENTION`` after it finished,
then :func:`prune_commands` deletes it.

Both work in batches of at most ``batch`` rows, each batch its own short transaction committed before the next
(the exception to "the caller owns the transaction", as in ``dep/sync.py``): a run never holds the table, a stop
or a crash between batches loses none of those committed, and the next run carries on where it stopped. Each
batch reads its rows through the index made for it (``ix_commands_waiting_expiry``, ``ix_commands_finished_at``)
and continues after the last row of the batch before, so a run costs what it removes, not what the table holds.
The write re-checks the row (still waiting, still finished and old enough): a device answering meanwhile, or
another Pippin process running the same job, is never overwritten.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.errors import InvalidInput
from pippin.jobs.periodic import PeriodicJob, ShouldStop
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import WAITING, Command, CommandStatus, utcnow, waiting_clause

logger = logging.getLogger(__name__)

#: Rows per batch: one short transaction each (an IN list of this many ids fits every SQLite build's limit).
UPKEEP_BATCH = 500
MAX_BATCH = 10_000
#: How soon a command past its expiry is marked at the latest (the device's own connection marks it sooner).
EXPIRE_TICK = timedelta(minutes=5)
PRUNE_TICK = timedelta(hours=1)


@dataclass(frozen=True)
class UpkeepCounts:
    """What one pass did (or, dry, would do): commands marked expired, finished commands deleted."""

    expired: int
    pruned: int
    dry_run: bool = False


def _never_stop() -> bool:
    return False


def _check_batch(batch: int) -> int:
    if isinstance(batch, bool) or not isinstance(batch, int) or not 0 < batch <= MAX_BATCH:
        raise InvalidInput(f"An upkeep batch holds 1 to {MAX_BATCH} commands.")
    return batch


def _ids(rows: Sequence[tuple[int, datetime]]) -> list[int]:
    return [row[0] for row in rows]


_Rows = list[tuple[int, datetime]]


def expiry_batch_query(*, now: datetime, batch: int) -> Select[int, datetime]:
    """The next batch of waiting commands past their expiry, read from ``ix_commands_waiting_expiry`` (the
    waiting predicate written as the partial index states it, so that both databases use the index)."""
    query = select(Command.id, Command.expires_at).where(waiting_clause(), Command.expires_at <= now)
    return query.order_by(Command.expires_at).limit(batch)


def prune_batch_query(*, cutoff: datetime, after: datetime | None, batch: int) -> Select[int, datetime | None]:
    """The next batch of commands finished before ``cutoff`` (from ``after`` on), read from
    ``ix_commands_finished_at``."""
    query = select(Command.id, Command.finished_at).where(Command.finished_at < cutoff)
    if after is not None:
        query = query.where(Command.finished_at >= after)
    return query.order_by(Command.finished_at).limit(batch)


def _expiry_batch(session: Session, *, now: datetime, batch: int) -> _Rows:
    return [(id_, at) for id_, at in session.execute(expiry_batch_query(now=now, batch=batch))]


def expire_commands(
    session_factory: SessionFactory,
    *,
    clock: Callable[[], datetime] = utcnow,
    batch: int = UPKEEP_BATCH,
    should_stop: ShouldStop = _never_stop,
) -> int:
    """Mark every waiting command whose ``expires_at`` has passed ``expired``, one committed transaction per batch
    of at most ``batch``; how many. A command the device answered or an admin canceled meanwhile is left alone."""
    size = _check_batch(batch)
    now = clock()
    expired = 0
    while not should_stop():
        with transaction(session_factory) as session:
            rows = _expiry_batch(session, now=now, batch=size)
            marked = 0
            if rows:
                result = session.execute(
                    update(Command)
                    .where(Command.id.in_(_ids(rows)), waiting_clause(), Command.expires_at <= now)
                    .values(status=CommandStatus.expired, finished_at=now)
                    .execution_options(synchronize_session=False)
                )
                marked = int(getattr(result, "rowcount", 0) or 0)
        expired += marked
        # The rows marked left the partial index: the next batch starts at its new head, with no offset to skip.
        # (A full batch of which nothing could be marked would come back whole: stop, the next run looks again.)
        if len(rows) < size or marked == 0:
            break
    if expired:
        logger.info("commands expired", extra={"fields": {"expired": expired}})
    return expired


def _prune_batch(session: Session, *, cutoff: datetime, after: datetime | None, batch: int) -> _Rows:
    rows = session.execute(prune_batch_query(cutoff=cutoff, after=after, batch=batch))
    return [(id_, at) for id_, at in rows if at is not None]


def prune_commands(
    session_factory: SessionFactory,
    *,
    settings: Settings,
    clock: Callable[[], datetime] = utcnow,
    batch: int = UPKEEP_BATCH,
    should_stop: ShouldStop = _never_stop,
) -> int:
    """Delete the commands that finished more than ``PIPPIN_COMMAND_RETENTION`` ago, with their answers, one
    committed transaction per batch of at most ``batch``; how many. Waiting commands are never deleted."""
    size = _check_batch(batch)
    cutoff = clock() - settings.command_retention
    pruned = 0
    after: datetime | None = None
    while not should_stop():
        with transaction(session_factory) as session:
            rows = _prune_batch(session, cutoff=cutoff, after=after, batch=size)
            deleted = 0
            if rows:
                # A command still waiting never has a finished_at; re-checked all the same, in the statement.
                result = session.execute(
                    delete(Command)
                    .where(Command.id.in_(_ids(rows)), Command.finished_at < cutoff, Command.status.not_in(WAITING))
                    .execution_options(synchronize_session=False)
                )
                deleted = int(getattr(result, "rowcount", 0) or 0)
        pruned += deleted
        if len(rows) < size or deleted == 0:
            break
        # Continue from the last end read (the rows deleted are gone, so ties need no id): the index range already
        # walked, with the dead entries a delete leaves on PostgreSQL until vacuum, is not read again.
        after = rows[-1][1]
    if pruned:
        logger.info("finished commands pruned", extra={"fields": {"pruned": pruned}})
    return pruned


def count_upkeep(
    session_factory: SessionFactory, *, settings: Settings, clock: Callable[[], datetime] = utcnow
) -> UpkeepCounts:
    """What a pass would do now, changing nothing: the commands it would expire and those it would prune
    (those it expires are not old enough to be pruned in the same pass)."""
    now = clock()
    with read_transaction(session_factory) as session:
        expiring = session.scalar(
            select(func.count()).select_from(Command).where(waiting_clause(), Command.expires_at <= now)
        )
        finished = session.scalar(
            select(func.count())
            .select_from(Command)
            .where(Command.finished_at < now - settings.command_retention, Command.status.not_in(WAITING))
        )
    return UpkeepCounts(expired=int(expiring or 0), pruned=int(finished or 0), dry_run=True)


def run_upkeep(
    session_factory: SessionFactory,
    *,
    settings: Settings,
    clock: Callable[[], datetime] = utcnow,
    batch: int = UPKEEP_BATCH,
) -> UpkeepCounts:
    """One pass now: expire what has expired, then prune what is past its retention."""
    expired = expire_commands(session_factory, clock=clock, batch=batch)
    pruned = prune_commands(session_factory, settings=settings, clock=clock, batch=batch)
    return UpkeepCounts(expired=expired, pruned=pruned)


def command_jobs(
    session_factory: SessionFactory, *, settings: Settings, clock: Callable[[], datetime] = utcnow
) -> list[PeriodicJob]:
    """The command queue's periodic jobs, for the server's job runner: two, so a long prune never delays expiry."""

    def expire(should_stop: ShouldStop) -> None:
        expire_commands(session_factory, clock=clock, should_stop=should_stop)

    def prune(should_stop: ShouldStop) -> None:
        prune_commands(session_factory, settings=settings, clock=clock, should_stop=should_stop)

    return [
        PeriodicJob("commands.expire", EXPIRE_TICK, expire),
        PeriodicJob("commands.prune_finished", PRUNE_TICK, prune),
    ]
