"""The sync window: which run may sync a DEP token now, decided by the database so it holds across processes.

The seed's rule (a sync gets a fixed window and Sync stays disabled meanwhile) must hold for two ``pippin``
processes, or two machines, sharing one database. A claim is therefore ONE conditional ``UPDATE`` whose
``WHERE`` says "the window is free": exactly one concurrent caller sees a row count of 1. On PostgreSQL (READ
COMMITTED) a second ``UPDATE`` of the same row waits for the first transaction and then re-checks the ``WHERE``
against the committed row; on SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (``store/db.py``),
so writers are serialised before they read. Claims therefore run in :func:`pippin.store.db.transaction`, never in
a read transaction. A run that dies holds its window only until the window ends.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CursorResult, or_, update
from sqlalchemy.orm import Session

from pippin.store.models import DEPToken


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def claim_sync_window(session: Session, *, token_id: int, run_id: int, until: datetime, now: datetime) -> bool:
    """Give the token's sync window to ``run_id`` until ``until`` if it is free at ``now``; True when claimed.

    The caller commits; until then other claimers wait on the row (PostgreSQL) or the database (SQLite).
    """
    result = session.execute(
        update(DEPToken)
        .where(
            DEPToken.id == token_id,
            or_(DEPToken.sync_window_until.is_(None), DEPToken.sync_window_until <= now),
        )
        .values(sync_window_until=until, sync_window_run_id=run_id)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def hold_sync_window(session: Session, *, token_id: int, run_id: int) -> bool:
    """Confirm that ``run_id`` still owns the window, and lock the token row for the rest of the transaction.

    A sync calls this first in each page's transaction: if its window ran out and another run claimed the
    token meanwhile, it learns so before writing anything, and the page is dropped whole (its cursor with it).
    """
    result = session.execute(
        update(DEPToken)
        .where(DEPToken.id == token_id, DEPToken.sync_window_run_id == run_id)
        .values(sync_window_run_id=run_id)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def release_sync_window(session: Session, *, token_id: int, run_id: int, now: datetime) -> bool:
    """End ``run_id``'s window at ``now`` so the next sync may start at once; a no-op if another run owns it."""
    result = session.execute(
        update(DEPToken)
        .where(DEPToken.id == token_id, DEPToken.sync_window_run_id == run_id)
        .values(sync_window_until=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1
