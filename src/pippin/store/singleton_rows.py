"""Tables of one row (the push certificate, the vendor certificate): the row found and locked, or made, once.

Two processes making the first row at the same moment must end with one row and no error: the insert runs in a
savepoint, and the one that loses the race on the primary key reads (and locks) the winner's row instead. On
PostgreSQL the lock is ``SELECT ... FOR UPDATE``; on SQLite the write transaction already holds the database's
one write lock (``BEGIN IMMEDIATE``, ``store/db.py``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pippin.store.models import Base

Row = TypeVar("Row", bound=Base)


def lock_or_create(session: Session, model: type[Row], key: int, **values: Any) -> Row:
    """The row of ``model`` with primary key ``key``, locked for the rest of the caller's transaction; inserted with
    ``values`` (and the model's defaults) when missing. The caller sets what it changes either way."""
    found = session.get(model, key, with_for_update=True)
    if found is not None:
        return found
    row = model(id=key, **values)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another process made the row meanwhile: use (and lock) that one
        found = session.get(model, key, with_for_update=True, populate_existing=True)
        assert found is not None, "the row that won the race is committed"
        return found
    return row
