"""Webhook events waiting to be posted

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 08:05:00

``webhook_events`` holds the nanomdm/MicroMDM-compatible events (check-ins, command answers) recorded in the
transaction of what they report, until a process posts them to ``PIPPIN_WEBHOOK_URL`` and, some time later, prunes
them. A new table only, depending on no other: it starts empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0022"
# This table needs none of 0021's (the command queue); it follows it only to keep one line of history.
down_revision = "0021"
branch_labels = None
depends_on = None

_STATUSES = ("pending", "delivered", "given_up")


def upgrade() -> None:
    utc = pippin.store.models.base.UTCDateTime
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("topic", sa.String(length=48), nullable=False),
        sa.Column("udid", sa.String(length=64), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("body_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(*_STATUSES, name="webhookeventstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", utc(), nullable=True),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("finished_at", utc(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_webhook_events_event_id")),
    )
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_events_next_attempt_at", ["next_attempt_at"], unique=False)
        batch_op.create_index("ix_webhook_events_udid_id", ["udid", "id"], unique=False)
        batch_op.create_index("ix_webhook_events_finished_at", ["finished_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_events_finished_at")
        batch_op.drop_index("ix_webhook_events_udid_id")
        batch_op.drop_index("ix_webhook_events_next_attempt_at")
    op.drop_table("webhook_events")
