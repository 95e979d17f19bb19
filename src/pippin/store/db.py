"""Engines, sessions and transactions: the only place that knows how Pippin connects to its database.

SQLite (the embedded default) runs in WAL mode with foreign keys on, and every transaction starts with
``BEGIN IMMEDIATE``: a transaction that reads and then writes cannot dead-lock with another one, and the
conditional updates that guard the sync window are serialised across processes. PostgreSQL runs at
READ COMMITTED; the guards there are single conditional ``UPDATE`` statements or row locks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from pippin.errors import ConfigurationError

SessionFactory = sessionmaker[Session]


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself instead of the driver's lazy BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``, set up for Pippin's concurrency rules on SQLite or PostgreSQL."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(
            "PIPPIN_DATABASE_URL is not a database URL.",
            hint="Use sqlite:///path/to/pippin.db or postgresql+psycopg://user@host/dbname.",
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    raise ConfigurationError(
        f"Database backend {backend!r} is not supported.",
        hint="Pippin runs on SQLite (the default) and PostgreSQL.",
    )


def create_session_factory(engine: Engine) -> SessionFactory:
    """Sessions that keep loaded objects usable after commit (the CLI prints them after the transaction)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: SessionFactory) -> Iterator[Session]:
    """One unit of work: commits when the block ends, rolls back when it raises."""
    with factory() as session, session.begin():
        yield session
