"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, select

from pippin.store.migrate import (
    DIALECT_ONLY_INDEX_PREFIXES,
    current_revision,
    head_revision,
    include_in_comparison,
    upgrade_to_head,
)
from pippin.store.models import Base, DEPToken


def test_migrated_schema_matches_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include_in_comparison})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], "models changed without an Alembic revision: run `make migration`"


def test_upgrade_is_idempotent(engine: Engine) -> None:
    upgrade_to_head(engine)
    assert current_revision(engine) == head_revision(engine)


def test_timestamps_come_back_aware_utc(session_factory) -> None:  # type: ignore[no-untyped-def]
    stockholm = timezone(timedelta(hours=1))
    moment = datetime(2026, 1, 17, 12, 2, 21, tzinfo=stockholm)
    with session_factory() as session, session.begin():
        session.add(DEPToken(name="acme", expires_at=moment))
    with session_factory() as session:
        stored = session.scalars(select(DEPToken.expires_at)).one()
    assert stored == moment
    assert stored is not None and stored.tzinfo == UTC


def test_naive_timestamps_are_refused(session_factory) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception, match="naive"), session_factory() as session, session.begin():
        session.add(DEPToken(name="acme", expires_at=datetime(2026, 1, 1)))


COUNT_TRIGGERS = {
    "device_counts_insert",
    "device_counts_delete",
    "device_counts_update",
    "enrollment_counts_insert",
    "enrollment_counts_delete",
    "enrollment_counts_update",
}


def test_the_triggers_keeping_device_counts_exist_at_head(engine: Engine) -> None:
    """A later batch migration that recreates ``devices`` or ``enrollments`` on SQLite drops them (see 0011)."""
    if engine.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = (
            "SELECT tgname FROM pg_trigger "
            "WHERE NOT tgisinternal AND tgrelid::regclass::text IN ('devices', 'enrollments')"
        )
    with engine.connect() as connection:
        names = set(connection.exec_driver_sql(query).scalars())
    assert names >= COUNT_TRIGGERS


def test_postgresql_has_trigram_indexes_for_the_device_search(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no trigram index; its search reads the covering index ix_devices_search")
    with engine.connect() as connection:
        names = set(
            connection.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'devices' AND schemaname = current_schema()"
            ).scalars()
        )
    prefix = DIALECT_ONLY_INDEX_PREFIXES[0]
    assert {f"{prefix}{column}" for column in ("serial_number", "model", "asset_tag", "description")} <= names
