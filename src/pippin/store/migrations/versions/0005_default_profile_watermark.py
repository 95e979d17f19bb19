"""Look only at newly synced devices for the default profile; due assignments by token

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:14:45.068923
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_assignment_due"))
        batch_op.create_index(
            "ix_devices_assignment_due", ["assignment_status", "token_id", "assignment_retry_at"], unique=False
        )
        batch_op.create_index("ix_devices_token_synced", ["token_id", "last_synced_at"], unique=False)

    with op.batch_alter_table("token_default_profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("covered_until", pippin.store.models.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("token_default_profiles", schema=None) as batch_op:
        batch_op.drop_column("covered_until")

    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("ix_devices_token_synced")
        batch_op.drop_index("ix_devices_assignment_due")
        batch_op.create_index(
            batch_op.f("ix_devices_assignment_due"), ["assignment_status", "assignment_retry_at"], unique=False
        )
