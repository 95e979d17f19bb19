"""Waiting, in a race test, until another transaction waits for a lock the test holds (PostgreSQL)."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, text


def wait_until_a_lock_is_awaited(engine: Engine, what: str) -> None:
    """Poll PostgreSQL until some transaction waits for a lock (a bound, not a timing the test measures); ``what``
    names the waiter in the failure. SQLite serialises whole writing transactions, so there is nothing to wait for."""
    if engine.dialect.name != "postgresql":
        return
    for _ in range(3000):
        with engine.connect() as connection:
            if connection.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
                return
        threading.Event().wait(0.01)
    raise AssertionError(f"{what} never waited for the lock")
