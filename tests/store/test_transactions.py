"""Reads start deferred and never wait for a writer; writes take the write lock up front; both on SQLite and
PostgreSQL.

The SQLite checks write through a second, plain ``sqlite3`` connection with a busy timeout of zero: "the write
went through at once" or "it found the database locked" is then a fact, not a timing.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from sqlalchemy import Engine, select, update

from pippin.store.db import SessionFactory, read_transaction, request_session, transaction
from pippin.store.migrate import current_revision, head_revision
from pippin.store.models import DEPToken


def _add_token(session_factory: SessionFactory, name: str) -> None:
    with transaction(session_factory) as session:
        session.add(DEPToken(name=name))


def _names(session_factory: SessionFactory) -> list[str]:
    with read_transaction(session_factory) as session:
        return list(session.scalars(select(DEPToken.name).order_by(DEPToken.name)))


def _sqlite_path(engine: Engine) -> str:
    if engine.dialect.name != "sqlite":
        pytest.skip("the write lock is SQLite's; PostgreSQL locks rows, which reads never take")
    database = engine.url.database
    assert database is not None
    return database


def _write_elsewhere(path: str, name: str) -> None:
    """Write a row from another connection that refuses to wait for the write lock."""
    with closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as other:
        other.execute("CREATE TABLE IF NOT EXISTS other_writer (name TEXT)")
        other.execute("INSERT INTO other_writer (name) VALUES (?)", (name,))


def _written_elsewhere(path: str) -> list[str]:
    with closing(sqlite3.connect(path)) as other:
        return [row[0] for row in other.execute("SELECT name FROM other_writer ORDER BY name")]


def test_a_read_transaction_holds_up_no_writer(engine: Engine, session_factory: SessionFactory) -> None:
    path = _sqlite_path(engine)
    _add_token(session_factory, "acme")
    _write_elsewhere(path, "alpha")
    with read_transaction(session_factory) as session:
        assert session.scalars(select(DEPToken.name)).all() == ["acme"]
        _write_elsewhere(path, "beta")  # would raise "database is locked" under BEGIN IMMEDIATE
    assert _written_elsewhere(path) == ["alpha", "beta"]


def test_a_write_transaction_takes_the_write_lock_before_it_reads(
    engine: Engine, session_factory: SessionFactory
) -> None:
    path = _sqlite_path(engine)
    with transaction(session_factory) as session:
        session.scalars(select(DEPToken)).all()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            _write_elsewhere(path, "beta")


@pytest.mark.parametrize(("method", "writes"), [("GET", False), ("HEAD", False), ("POST", True), ("DELETE", True)])
def test_a_request_reads_for_get_and_head_and_writes_otherwise(
    engine: Engine, session_factory: SessionFactory, method: str, writes: bool
) -> None:
    path = _sqlite_path(engine)
    with request_session(session_factory, method=method) as session:
        session.scalars(select(DEPToken)).all()
        if writes:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                _write_elsewhere(path, "beta")
        else:
            _write_elsewhere(path, "beta")
        session.commit()
    _write_elsewhere(path, "after")  # the lock ends with the request


def test_a_read_that_writes_after_another_commit_is_not_refused(session_factory: SessionFactory) -> None:
    """In WAL mode a deferred transaction whose snapshot is stale cannot take the write lock; this one restarts."""
    _add_token(session_factory, "acme")
    with read_transaction(session_factory) as session:
        token = session.scalars(select(DEPToken).where(DEPToken.name == "acme")).one()
        _add_token(session_factory, "beta")  # another writer commits after the read began
        token.apple_id = "admin@example.com"  # e.g. a sign-in touching last_seen_at
    with read_transaction(session_factory) as session:
        stored = session.scalars(select(DEPToken.apple_id).where(DEPToken.name == "acme")).one()
    assert stored == "admin@example.com"
    assert _names(session_factory) == ["acme", "beta"]


def test_a_failed_request_writes_nothing(session_factory: SessionFactory) -> None:
    with pytest.raises(RuntimeError), request_session(session_factory, method="POST") as session:
        session.add(DEPToken(name="acme"))
        session.flush()
        raise RuntimeError("the route failed")
    assert _names(session_factory) == []


def test_a_read_that_runs_an_update_statement_after_another_commit_is_not_refused(
    session_factory: SessionFactory,
) -> None:
    _add_token(session_factory, "acme")
    with read_transaction(session_factory) as session:
        session.scalars(select(DEPToken)).all()
        _add_token(session_factory, "beta")
        session.execute(update(DEPToken).where(DEPToken.name == "acme").values(apple_id="admin@example.com"))
    with read_transaction(session_factory) as session:
        assert session.scalars(select(DEPToken.apple_id).where(DEPToken.name == "acme")).one() == "admin@example.com"


def test_the_schema_check_every_command_makes_waits_for_no_writer(engine: Engine) -> None:
    path = _sqlite_path(engine)
    with closing(sqlite3.connect(path, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")
        assert current_revision(engine) == head_revision(engine)
        writer.execute("ROLLBACK")
