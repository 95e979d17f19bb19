"""Sign-in throttle counters per address and account, replacing the per-account lock-out

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:00:00

The lock-out columns of ``admin_users`` go: a lock per account let anyone lock any admin out, and it existed
only for real accounts, which told who had one. Counters of the running lock-outs are not carried over; an
account locked at the upgrade opens at once and is counted afresh by the throttle.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("window_started_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("blocked_until", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("succeeded_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("account_key", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_throttles")),
        sa.UniqueConstraint("scope", "key", name="uq_sign_in_throttles_scope_key"),
    )
    with op.batch_alter_table("sign_in_throttles", schema=None) as batch_op:
        batch_op.create_index("ix_sign_in_throttles_window_started_at", ["window_started_at"], unique=False)
        batch_op.create_index("ix_sign_in_throttles_account_key", ["account_key"], unique=False)
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_sign_ins")


def downgrade() -> None:
    with op.batch_alter_table("admin_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failed_sign_ins", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("locked_until", pippin.store.models.base.UTCDateTime(), nullable=True))
    with op.batch_alter_table("sign_in_throttles", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_throttles_window_started_at")
    op.drop_table("sign_in_throttles")
