"""Migrations keep every row: SQLite's batch mode recreates a parent table with foreign keys off, and a
migration that would leave a dangling reference is rolled back whole, naming the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, func, select, text

from pippin.store.migrate import MigrationFailed, migration_connection
from pippin.store.models import DEPToken, Device, SyncRun

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _sqlite_only(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("batch mode recreates tables only on SQLite; PostgreSQL alters them in place")


def _populate(engine: Engine) -> None:
    with engine.begin() as connection:
        token_id = connection.execute(
            DEPToken.__table__.insert().values(name="acme", status="ok", created_at=NOW, fetch_generation=0)
        ).inserted_primary_key[0]
        connection.execute(
            Device.__table__.insert(),
            [
                {
                    "serial_number": f"C0{n:08d}",
                    "token_id": token_id,
                    "first_seen_at": NOW,
                    "last_synced_at": NOW,
                    "fetch_generation": 0,
                    "apple_record": {},
                    "enrollment_state": "not_contacted",
                }
                for n in range(3)
            ],
        )
        connection.execute(
            SyncRun.__table__.insert().values(
                token_id=token_id, kind="full", started_at=NOW, window_ends_at=NOW + timedelta(minutes=10)
            )
        )


def _counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as connection:
        runs = connection.scalar(select(func.count()).select_from(SyncRun.__table__))
        linked = connection.scalar(select(func.count()).where(Device.__table__.c.token_id.is_not(None)))
        tokens = connection.scalar(select(func.count()).select_from(DEPToken.__table__))
    return int(tokens or 0), int(runs or 0), int(linked or 0)


def _recreate_dep_tokens(connection: Connection) -> None:
    """What any batch migration of dep_tokens does on SQLite: copy to a new table, drop the old, rename."""
    operations = Operations(MigrationContext.configure(connection, opts={"render_as_batch": True}))
    with operations.batch_alter_table("dep_tokens", recreate="always"):
        pass


def test_with_foreign_keys_on_a_batch_recreate_loses_the_children(engine: Engine) -> None:
    """The bug, reproduced: the old way (the app's connection, foreign keys on) cascades the DROP TABLE."""
    _sqlite_only(engine)
    _populate(engine)
    with engine.begin() as connection:
        _recreate_dep_tokens(connection)
    assert _counts(engine) == (1, 0, 0)


def test_a_migration_connection_keeps_the_children_of_a_recreated_table(engine: Engine) -> None:
    _sqlite_only(engine)
    _populate(engine)
    with migration_connection(engine) as connection:
        _recreate_dep_tokens(connection)
    assert _counts(engine) == (1, 1, 3)
    with engine.connect() as connection:  # foreign keys are back on for the pool's next user
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_migration_that_leaves_a_dangling_reference_is_rolled_back_and_named(engine: Engine) -> None:
    _sqlite_only(engine)
    _populate(engine)
    refused = pytest.raises(MigrationFailed, match="sync_runs point at missing dep_tokens")
    with refused as raised, migration_connection(engine) as connection:
        connection.execute(text("DELETE FROM dep_tokens"))
    assert "devices point at missing dep_tokens" in raised.value.message
    assert _counts(engine) == (1, 1, 3)


def test_a_migration_that_raises_changes_nothing(engine: Engine) -> None:
    _populate(engine)
    with pytest.raises(RuntimeError), migration_connection(engine) as connection:
        connection.execute(text("UPDATE dep_tokens SET name = 'renamed'"))
        raise RuntimeError("a migration step failed")
    with engine.connect() as connection:
        assert connection.scalar(select(DEPToken.__table__.c.name)) == "acme"
