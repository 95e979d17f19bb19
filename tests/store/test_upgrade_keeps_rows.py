"""Upgrading keeps every row: from EVERY earlier revision to head, on SQLite and PostgreSQL.

For each revision r before head: a new database is migrated to r, every table that exists at r is filled with
rows (read from the schema at r by reflection, so a revision added later is covered with no change here), then
the database is upgraded to head and every row is read back and compared, column by column, for every column
that exists at both r and head. Values are generated per column type; columns whose values carry meaning
(states, statuses, kinds) cycle through the values Pippin writes, and every foreign key points at a real row,
nullable ones included, so a cascade or a SET NULL during a table rebuild shows as a difference.

A revision that deliberately transforms data registers its expectation in :data:`EXPECTED_CHANGES`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    func,
    select,
    text,
)
from sqlalchemy.types import TypeEngine

from pippin.store.db import create_db_engine
from pippin.store.migrate import alembic_config, head_revision, upgrade_to, upgrade_to_head

Rows = dict[str, list[dict[str, Any]]]

ROWS_PER_TABLE = 6
MOMENT = datetime(2026, 1, 17, 12, 2, 21, 123000, tzinfo=UTC)

#: Columns whose values mean something: each row takes the next value, as Pippin writes them (wire strings).
MEANINGFUL_VALUES: dict[tuple[str, str], list[Any]] = {
    ("dep_tokens", "status"): [
        "ok",
        "awaiting_token",
        "expired",
        "terms_not_signed",
        "access_denied",
        "token_rejected",
    ],
    ("dep_tokens", "cursor_kind"): ["fetch", "sync", None],
    ("devices", "enrollment_state"): ["not_contacted", "enrolled", "pending_reset", "failed", "blocked", "removed"],
    ("devices", "profile_status"): ["empty", "assigned", "pushed", "removed"],
    ("devices", "assignment_status"): ["pending", "assigned", "not_accessible", "failed", "throttled", None],
    ("sync_runs", "kind"): ["full", "incremental"],
    ("sync_runs", "trigger"): ["manual", "api", "console", "scheduled"],
    ("sync_runs", "outcome"): ["succeeded", "running", "failed", "timed_out"],
    ("enrollment_profiles", "user_affinity"): ["none", "with_user"],
    ("admin_users", "role"): ["admin", "read-only"],
    ("admin_api_tokens", "scope"): ["read-only", "read-write"],
    ("audit_events", "interface"): ["console", "api", "cli"],
    ("sign_in_throttles", "scope"): ["address", "account_address", "account"],
}

#: revision -> how upgrading across it changes rows on purpose: given the rows as written before it, the rows
#: expected at head (every column of the expected rows that exists at head is compared, so a change may also name
#: the values a new column starts with). Add one beside a transforming migration.
EXPECTED_CHANGES: dict[str, Callable[[Rows], Rows]] = {}


def _assigned_devices_queued_again(rows: Rows) -> Rows:
    """0007: a device Apple holds an old-URL definition for is queued again (its cooldowns kept)."""

    def requeued(device: dict[str, Any]) -> dict[str, Any]:
        if device.get("assignment_status") == "assigned" and device.get("assigned_profile_id") is not None:
            return {**device, "assignment_status": "pending", "assignment_retry_at": None}
        return device

    return {**rows, "devices": [requeued(device) for device in rows.get("devices", [])]}


def _enrollment_state_split(rows: Rows) -> Rows:
    """0006: Apple's side of the old ``enrollment_state`` becomes ``apple_status`` (removed stays removed)."""

    def split(device: dict[str, Any]) -> dict[str, Any]:
        apple_status = "removed" if device.get("enrollment_state") == "removed" else "assigned"
        return {**device, "apple_status": apple_status}

    return {**rows, "devices": [split(device) for device in rows.get("devices", [])]}


def _existing_tokens_keep_writing(rows: Rows) -> Rows:
    """0009: every API token made before scopes could write, so it stays read-write; no admin is disabled."""
    return {
        **rows,
        "admin_api_tokens": [{**token, "scope": "read-write"} for token in rows.get("admin_api_tokens", [])],
        "admin_users": [{**user, "disabled_at": None} for user in rows.get("admin_users", [])],
    }


def _master_key_tables_start_empty(rows: Rows) -> Rows:
    """0013: the master key check and the signing keys start empty (the first process to start writes them)."""
    return {**rows, "master_key_checks": [], "signing_keys": []}


EXPECTED_CHANGES["0006"] = _enrollment_state_split
EXPECTED_CHANGES["0007"] = _assigned_devices_queued_again
EXPECTED_CHANGES["0009"] = _existing_tokens_keep_writing
EXPECTED_CHANGES["0013"] = _master_key_tables_start_empty


def _profiles_start_without_a_minimum_os(rows: Rows) -> Rows:
    """0020: every existing profile lets devices of any OS version enroll, as before."""
    profiles = [{**profile, "minimum_os_version": None} for profile in rows.get("enrollment_profiles", [])]
    return {**rows, "enrollment_profiles": profiles}


EXPECTED_CHANGES["0020"] = _profiles_start_without_a_minimum_os


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(create_db_engine("sqlite://")))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


REVISIONS = _revisions()
EARLIER = REVISIONS[:-1]


#: Tables the database fills itself (by triggers) from the others: not written here, and checked on their own
#: (``test_state_counts_upgrade.py``).
DERIVED_TABLES = ("alembic_version", "device_state_counts")


def _reflect(engine: Engine) -> MetaData:
    metadata = MetaData()
    metadata.reflect(bind=engine)
    for name in DERIVED_TABLES:
        if name in metadata.tables:
            metadata.remove(metadata.tables[name])
    return metadata


def _generated(table: Table, column_name: str, kind: TypeEngine[Any], row: int) -> Any:
    """A value of the column's type, unique per row (unique constraints), within the column's length."""
    if isinstance(kind, Boolean):
        return row % 2 == 0
    if isinstance(kind, Integer | Numeric | Float):  # SQLAlchemy 2.1's Float is no Numeric
        return 1000 * row + 7
    if isinstance(kind, DateTime | Date):
        return MOMENT + timedelta(days=row, minutes=row)
    if isinstance(kind, LargeBinary):
        return f"{table.name}.{column_name}.{row}".encode() + bytes(range(8))
    if isinstance(kind, JSON):
        return {"row": row, "column": column_name, "nested": [row, "ÅÄÖ"]}
    length = getattr(kind, "length", None) or 200
    text = f"{column_name}-{row}-åäö-{table.name}"
    if column_name.endswith("email") or column_name.endswith("apple_id") or column_name == "admin_id":
        text = f"user{row}@example.com"
    return text[:length]


def _row(table: Table, row: int) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column in table.columns:
        foreign = next(iter(column.foreign_keys), None)
        if foreign is not None:
            # The parent's row with the same number: every reference is real, whatever the type of the parent's key
            # (push_deliveries.udid refers to enrollments' text key).
            target = foreign.column
            same_row = isinstance(target.type, Integer)
            values[column.name] = row if same_row else _generated(target.table, target.name, target.type, row)
        elif column.primary_key and isinstance(column.type, Integer):
            values[column.name] = row
        elif (table.name, column.name) in MEANINGFUL_VALUES:
            choices = MEANINGFUL_VALUES[(table.name, column.name)]
            values[column.name] = choices[(row - 1) % len(choices)]
        else:
            values[column.name] = _generated(table, column.name, column.type, row)
    return values


def _read(engine: Engine, metadata: MetaData, tables: list[str]) -> Rows:
    rows: Rows = {}
    with engine.connect() as connection:
        for name in tables:
            table = metadata.tables[name]
            order = list(table.primary_key.columns) or list(table.columns)
            rows[name] = [dict(row._mapping) for row in connection.execute(select(table).order_by(*order))]
    return rows


def _populate(engine: Engine) -> Rows:
    """Fill every table at the database's revision; returns the rows as read back at that revision."""
    metadata = _reflect(engine)
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            connection.execute(table.insert(), [_row(table, n) for n in range(1, ROWS_PER_TABLE + 1)])
    if engine.dialect.name == "postgresql":
        _advance_sequences(engine, metadata)
    return _read(engine, metadata, [table.name for table in metadata.sorted_tables])


def _advance_sequences(engine: Engine, metadata: MetaData) -> None:
    """Explicit ids leave PostgreSQL's sequences behind; move them on as rows written by Pippin would have."""
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            for column in table.primary_key.columns:
                if isinstance(column.type, Integer) and not column.foreign_keys:
                    top = connection.scalar(select(func.max(column)))
                    connection.execute(
                        text("SELECT setval(pg_get_serial_sequence(:table, :column), :top)"),
                        {"table": table.name, "column": column.name, "top": top},
                    )


def _expected(revision: str, before: Rows) -> Rows:
    expected = before
    for later in REVISIONS[REVISIONS.index(revision) + 1 :]:
        change = EXPECTED_CHANGES.get(later)
        if change is not None:
            expected = change(expected)
    return expected


def test_every_revision_is_covered() -> None:
    assert REVISIONS[0] == "0001" and REVISIONS[-1] == head_revision(create_db_engine("sqlite://"))
    assert len(EARLIER) >= 4


@pytest.mark.parametrize("revision", EARLIER)
def test_upgrading_from_an_earlier_revision_keeps_every_row(empty_engine: Engine, revision: str) -> None:
    upgrade_to(empty_engine, revision)
    before = _populate(empty_engine)
    assert all(len(rows) == ROWS_PER_TABLE for rows in before.values())
    upgrade_to_head(empty_engine)
    head = _reflect(empty_engine)
    expected = _expected(revision, before)
    after = _read(empty_engine, head, [name for name in expected if name in head.tables])
    for name, expected_rows in expected.items():
        assert name in after, f"table {name} disappeared upgrading from {revision}"
        shared = [column for column in (expected_rows[0] if expected_rows else {}) if column in head.tables[name].c]
        got = [{column: row[column] for column in shared} for row in after[name]]
        want = [{column: row[column] for column in shared} for row in expected_rows]
        assert got == want, f"rows of {name} changed upgrading from {revision} to head"
