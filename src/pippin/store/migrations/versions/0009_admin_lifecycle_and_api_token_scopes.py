"""Admins can be disabled; API tokens have a scope (read-only or read-write), existing ones read-write

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:00:00

Both columns are added in place (``ALTER TABLE ... ADD COLUMN``), never by copying the table: a batch copy drops
``admin_users``, and with foreign keys on, dropping it deletes every console session. Every token that exists
could write until now, so each keeps doing so (``read-write``, the column's server default); new tokens get the
scope chosen at creation. No admin is disabled by the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("admin_users", sa.Column("disabled_at", pippin.store.models.base.UTCDateTime(), nullable=True))
    op.add_column(
        "admin_api_tokens",
        sa.Column(
            "scope",
            sa.Enum("read-only", "read-write", name="apitokenscope", native_enum=False, length=16),
            nullable=False,
            server_default="read-write",
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("admin_api_tokens", schema=None) as batch_op:
        batch_op.drop_column("scope")
    # Dropping a column of admin_users in place keeps its sessions (a batch copy would delete them).
    op.drop_column("admin_users", "disabled_at")
