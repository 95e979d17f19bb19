"""Revision 0006 splits ``enrollment_state`` without losing a row: a database populated at 0005, upgraded.

Run with foreign keys on (as Pippin's engine opens SQLite): a migration that copied ``devices`` or a table it
references would cascade-delete or null rows here, and the counts below would show it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, func, insert, inspect, select, text

from pippin.store.migrate import alembic_config, upgrade_to

T = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).replace(tzinfo=None)  # stored naive UTC, as UTCDateTime does
OLD_STATES = ("not_contacted", "enrolled", "pending_reset", "failed", "blocked", "removed")
TABLES = ("dep_tokens", "devices", "sync_runs", "enrollment_profiles", "profile_definitions", "token_default_profiles")


def _populate_at_0005(engine: Engine) -> None:
    tables = MetaData()
    tables.reflect(engine)
    t = tables.tables
    with engine.begin() as conn:
        for token_id, name in ((1, "acme"), (2, "beta")):
            conn.execute(
                insert(t["dep_tokens"]).values(
                    id=token_id, name=name, status="ok", fetch_generation=3, fetch_refreshes=1, created_at=T,
                    updated_at=T,
                )
            )  # fmt: skip
        conn.execute(
            insert(t["enrollment_profiles"]).values(
                id=1, name="Staff", revision=2, user_affinity="none", is_supervised=True, is_mdm_removable=False,
                is_mandatory=True, allow_pairing=False, await_device_configured=False, auto_advance_setup=False,
                anchor_certs=[], skip_setup_items=["Siri"], created_at=T, updated_at=T,
            )
        )  # fmt: skip
        conn.execute(
            insert(t["profile_definitions"]).values(
                profile_id=1, token_id=1, revision=2, profile_uuid="A" * 32, defined_at=T
            )
        )
        conn.execute(insert(t["token_default_profiles"]).values(token_id=1, profile_id=1, set_at=T, covered_until=T))
        for run in range(3):
            conn.execute(
                insert(t["sync_runs"]).values(
                    token_id=1 + run % 2, kind="full", trigger="manual", started_at=T, window_ends_at=T,
                    outcome="succeeded", pages=1, added=run, modified=0, removed=0, unchanged=0,
                )
            )  # fmt: skip
        for number, state in enumerate(OLD_STATES * 2):
            conn.execute(
                insert(t["devices"]).values(
                    id=100 + number, serial_number=f"SER{number:03d}", token_id=1 + number % 2, model="iPhone 15",
                    profile_status="assigned", profile_uuid="A" * 32, enrollment_state=state, first_seen_at=T,
                    last_synced_at=T, fetch_generation=3, apple_record={"serial_number": f"SER{number:03d}"},
                    assigned_profile_id=1 if number % 3 else None, assigned_revision=2 if number % 3 else None,
                    assignment_status="assigned" if number % 3 else None,
                    removed_at=T if state == "removed" else None,
                )
            )  # fmt: skip


def _snapshot(engine: Engine, *, skip: tuple[str, ...] = ()) -> dict[str, list[dict[str, Any]]]:
    tables = MetaData()
    tables.reflect(engine, only=list(TABLES))
    found = {}
    with engine.connect() as conn:
        for name in TABLES:
            table = tables.tables[name]
            columns = [column for column in table.c if column.name not in skip]
            order = table.primary_key.columns.values() or columns
            found[name] = [dict(row._mapping) for row in conn.execute(select(*columns).order_by(*order))]
    return found


def _with_foreign_keys_on(engine: Engine, step: Callable[[Config], None]) -> None:
    """Run one Alembic step with foreign keys ON (SQLite): the revision must be safe even without the runner's care."""
    config = alembic_config(engine)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()  # the pragma holds for the connection, outside any transaction
        config.attributes["connection"] = connection
        with connection.begin():
            step(config)


def test_upgrading_to_0006_keeps_every_row_and_maps_the_old_states(empty_engine: Engine) -> None:
    upgrade_to(empty_engine, "0005")
    _populate_at_0005(empty_engine)
    before = _snapshot(empty_engine, skip=("enrollment_state",))
    with empty_engine.connect() as conn:
        old = dict(conn.execute(text("SELECT serial_number, enrollment_state FROM devices")).all())

    _with_foreign_keys_on(empty_engine, lambda config: command.upgrade(config, "0006"))

    assert _snapshot(empty_engine, skip=("apple_status",)) == before  # every row, every other column, unchanged
    with empty_engine.connect() as conn:
        new = dict(conn.execute(text("SELECT serial_number, apple_status FROM devices")).all())
        assert conn.scalar(select(func.count()).select_from(text("enrollments"))) == 0
    assert new == {serial: "removed" if state == "removed" else "assigned" for serial, state in old.items()}
    indexes = {index["name"] for index in inspect(empty_engine).get_indexes("devices")}
    assert {"ix_devices_token_apple_status", "ix_devices_synced_serial"} <= indexes
    assert "ix_devices_token_state" not in indexes


def test_downgrading_from_0006_gives_back_the_old_column(empty_engine: Engine) -> None:
    upgrade_to(empty_engine, "0005")
    _populate_at_0005(empty_engine)
    upgrade_to(empty_engine, "0006")
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO enrollments (udid, device_id, status, first_contact_at) "
                "VALUES ('UDID-1', 100, 'enrolled', :at)"
            ),
            {"at": T},
        )
    _with_foreign_keys_on(empty_engine, lambda config: command.downgrade(config, "0005"))
    with empty_engine.connect() as conn:
        states = dict(conn.execute(text("SELECT id, enrollment_state FROM devices")).all())
        assert conn.scalar(select(func.count()).select_from(text("devices"))) == len(OLD_STATES) * 2
    assert states[100] == "enrolled"
    assert set(states.values()) == {"enrolled", "not_contacted", "removed"}
