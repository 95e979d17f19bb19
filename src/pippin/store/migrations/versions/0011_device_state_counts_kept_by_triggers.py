"""Device counts by state, kept by triggers: the overview reads a few rows instead of counting the fleet

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 01:10:00

``device_state_counts`` holds, per DEP token, state and "cannot enroll", how many devices are there. Row
triggers on ``devices`` and ``enrollments`` take a changed device out of the row it was counted in and add it to
the row it belongs in now, in the writer's transaction. The rules are ``pippin.inventory.state`` written out in
SQL as they stand at this revision (a migration must not change with later code); a change to those rules needs
a migration that replaces the triggers, and the inventory tests fail until it exists.

On SQLite a batch migration that recreates ``devices`` or ``enrollments`` drops their triggers: such a
migration must create them again (``create_triggers`` below). ``tests/store/test_migrations.py`` checks that
they exist at head.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The derived state of ``d`` (a device's columns) with ``e`` (its enrollment's, all null for none).
STATE = """CASE
    WHEN e.status = 'enrolled' AND d.apple_status = 'assigned' AND d.assigned_profile_id IS NOT NULL
        AND (COALESCE(e.profile_id, 0) <> d.assigned_profile_id
             OR COALESCE(e.profile_revision, 0) <> COALESCE(d.assigned_revision, 0))
        THEN 'pending_reset'
    WHEN e.status = 'enrolled' THEN 'enrolled'
    WHEN d.apple_status = 'removed' THEN 'removed'
    WHEN e.status = 'failed' THEN 'failed'
    WHEN e.status = 'unenrolled' THEN 'unenrolled'
    ELSE 'not_contacted'
END"""
CANNOT_ENROLL = """CASE WHEN d.apple_status = 'assigned'
    AND COALESCE(d.profile_status, '') NOT IN ('assigned', 'pushed')
    AND (e.status IS NULL OR e.status <> 'enrolled') THEN TRUE ELSE FALSE END"""
KEY = f"COALESCE(d.token_id, 0), {STATE}, {CANNOT_ENROLL}"

DEVICE_COLUMNS = ("id", "token_id", "apple_status", "assigned_profile_id", "assigned_revision", "profile_status")
ENROLLMENT_COLUMNS = ("device_id", "status", "profile_id", "profile_revision")
# The device columns a state derives from; an update touching none of them leaves the counts alone.
WATCHED_DEVICE_COLUMNS = DEVICE_COLUMNS[1:]
WATCHED_ENROLLMENT_COLUMNS = ENROLLMENT_COLUMNS


def _row(record: str, columns: tuple[str, ...]) -> str:
    """A one-row subquery of a trigger's NEW or OLD record."""
    return "SELECT " + ", ".join(f"{record}.{column} AS {column}" for column in columns)


def _device_record(record: str) -> str:
    """The device in ``record`` with the enrollment on the table."""
    return f"({_row(record, DEVICE_COLUMNS)}) AS d LEFT JOIN enrollments AS e ON e.device_id = d.id WHERE TRUE"


def _enrolled_as(record: str) -> str:
    """The device on the table that enrollment ``record`` belongs to, with that enrollment."""
    return (
        f"devices AS d JOIN ({_row(record, ENROLLMENT_COLUMNS)}) AS e ON e.device_id = d.id "
        f"WHERE d.id = {record}.device_id"
    )


def _unenrolled(record: str) -> str:
    """The device on the table that enrollment ``record`` belongs to, as if it had no enrollment."""
    nothing = (
        "SELECT CAST(NULL AS VARCHAR(16)) AS status, CAST(NULL AS INTEGER) AS profile_id, "
        "CAST(NULL AS INTEGER) AS profile_revision"
    )
    return f"devices AS d CROSS JOIN ({nothing}) AS e WHERE d.id = {record}.device_id"


def _add(source: str) -> str:
    return (
        "INSERT INTO device_state_counts (token_id, state, cannot_enroll, devices) "  # noqa: S608 (this module's constants only)
        f"SELECT {KEY}, 1 FROM {source} "
        "ON CONFLICT (token_id, state, cannot_enroll) DO UPDATE SET devices = device_state_counts.devices + 1"
    )


def _remove(source: str) -> str:
    return (
        "UPDATE device_state_counts SET devices = devices - 1 "  # noqa: S608 (this module's constants only)
        f"WHERE (token_id, state, cannot_enroll) IN (SELECT {KEY} FROM {source})"
    )


# Each trigger: (name, timing and event, table, watched columns or None, statements).
# A device is counted out BEFORE it is deleted: its enrollment is unlinked (ON DELETE SET NULL) as part of the
# delete, after which the row it was counted in could no longer be told.
TRIGGERS = (
    ("device_counts_insert", "AFTER INSERT", "devices", None, (_add(_device_record("NEW")),)),
    ("device_counts_delete", "BEFORE DELETE", "devices", None, (_remove(_device_record("OLD")),)),
    (
        "device_counts_update",
        "AFTER UPDATE",
        "devices",
        WATCHED_DEVICE_COLUMNS,
        (_remove(_device_record("OLD")), _add(_device_record("NEW"))),
    ),
    (
        "enrollment_counts_insert",
        "AFTER INSERT",
        "enrollments",
        None,
        (_remove(_unenrolled("NEW")), _add(_enrolled_as("NEW"))),
    ),
    (
        "enrollment_counts_delete",
        "AFTER DELETE",
        "enrollments",
        None,
        (_remove(_enrolled_as("OLD")), _add(_unenrolled("OLD"))),
    ),
    (
        "enrollment_counts_update",
        "AFTER UPDATE",
        "enrollments",
        WATCHED_ENROLLMENT_COLUMNS,
        (
            _remove(_enrolled_as("OLD")),
            _add(_unenrolled("OLD")),
            _remove(_unenrolled("NEW")),
            _add(_enrolled_as("NEW")),
        ),
    ),
)


def _changed(columns: tuple[str, ...], dialect: str) -> str:
    differs = "IS NOT" if dialect == "sqlite" else "IS DISTINCT FROM"
    return " OR ".join(f"OLD.{column} {differs} NEW.{column}" for column in columns)


def create_triggers() -> None:
    dialect = op.get_bind().dialect.name
    for name, event, table, watched, statements in TRIGGERS:
        when = "" if watched is None else f" WHEN ({_changed(watched, dialect)})"
        columns = "" if watched is None else " OF " + ", ".join(watched)
        if dialect == "sqlite":
            body = "".join(f"{statement};\n" for statement in statements)
            op.execute(f"CREATE TRIGGER {name} {event}{columns} ON {table} FOR EACH ROW{when} BEGIN\n{body}END")
            continue
        returned = "OLD" if event.startswith("BEFORE") else "NULL"
        body = "".join(f"    {statement};\n" for statement in statements)
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n{body}"
            f"    RETURN {returned};\nEND\n$$"
        )
        op.execute(f"CREATE TRIGGER {name} {event}{columns} ON {table} FOR EACH ROW{when} EXECUTE FUNCTION {name}()")


def drop_triggers() -> None:
    dialect = op.get_bind().dialect.name
    for name, _event, table, _watched, _statements in TRIGGERS:
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")


def upgrade() -> None:
    op.create_table(
        "device_state_counts",
        sa.Column("token_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cannot_enroll", sa.Boolean(), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("token_id", "state", "cannot_enroll", name=op.f("pk_device_state_counts")),
    )
    op.execute(
        "INSERT INTO device_state_counts (token_id, state, cannot_enroll, devices) "  # noqa: S608 (this module's constants only)
        f"SELECT {KEY}, COUNT(*) FROM devices AS d LEFT JOIN enrollments AS e ON e.device_id = d.id "
        f"GROUP BY COALESCE(d.token_id, 0), {STATE}, {CANNOT_ENROLL}"
    )
    create_triggers()


def downgrade() -> None:
    drop_triggers()
    op.drop_table("device_state_counts")
