"""The command queue, and the device facts DeviceInformation reports

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 08:00:17

``commands`` holds each enrollment's queue and its history: the sealed command and answer beside the parsed
status, times and ErrorChain. The next-command and expiry queries read partial indexes of the waiting commands only,
so the history never slows them. It starts empty. The enrollment gains the facts a DeviceInformation answer brings
(all null until a device answers); only columns are added, which SQLite does in place, so the enrollments table
and its state-count triggers (0011) are not copied.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_STATUSES = ("queued", "sent", "acknowledged", "error", "not_now", "expired", "canceled")
# As ``store/models/command.py`` writes it: the queries that must use these indexes repeat it literally.
_WAITING = "status IN ('queued', 'sent', 'not_now')"

_FACTS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("device_name", sa.String(length=255)),
    ("model", sa.String(length=64)),
    ("model_name", sa.String(length=64)),
    ("capacity_gb", sa.Float()),
    ("available_capacity_gb", sa.Float()),
    ("battery_level", sa.Float()),
    ("wifi_mac", sa.String(length=32)),
    ("supervised", sa.Boolean()),
    ("activation_lock_enabled", sa.Boolean()),
    ("find_my_enabled", sa.Boolean()),
    ("lost_mode_enabled", sa.Boolean()),
    ("information_at", pippin.store.models.base.UTCDateTime()),
)


def upgrade() -> None:
    utc = pippin.store.models.base.UTCDateTime
    op.create_table(
        "commands",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("command_uuid", sa.String(length=64), nullable=False),
        sa.Column("udid", sa.String(length=64), nullable=False),
        sa.Column("request_type", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(*_STATUSES, name="commandstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("sent_at", utc(), nullable=True),
        sa.Column("answered_at", utc(), nullable=True),
        sa.Column("expires_at", utc(), nullable=False),
        sa.Column("finished_at", utc(), nullable=True),
        sa.Column("body_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("answer_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("report_status", sa.String(length=32), nullable=True),
        sa.Column("error_chain", sa.JSON(), nullable=True),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("not_now_count", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=True),
        sa.Column("bulk_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["udid"], ["enrollments.udid"], name=op.f("fk_commands_udid_enrollments"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commands")),
        sa.UniqueConstraint("command_uuid", name=op.f("uq_commands_command_uuid")),
    )
    waiting = {"sqlite_where": sa.text(_WAITING), "postgresql_where": sa.text(_WAITING)}
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.create_index("ix_commands_next", ["udid", "priority", "id"], unique=False, **waiting)
        batch_op.create_index("ix_commands_waiting_expiry", ["expires_at"], unique=False, **waiting)
        batch_op.create_index("ix_commands_udid_id", ["udid", "id"], unique=False)
        batch_op.create_index("ix_commands_finished_at", ["finished_at"], unique=False)

    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        for name, type_ in _FACTS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        for name, _type in reversed(_FACTS):
            batch_op.drop_column(name)

    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.drop_index("ix_commands_finished_at")
        batch_op.drop_index("ix_commands_udid_id")
        batch_op.drop_index("ix_commands_waiting_expiry")
        batch_op.drop_index("ix_commands_next")

    op.drop_table("commands")
