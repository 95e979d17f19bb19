"""Push tokens on enrollments and the push delivery state

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 05:47:08

The enrollment gains the push token and PushMagic its TokenUpdate check-in brings; ``push_deliveries`` holds,
per enrollment, the push waiting to be sent (with its claim and next attempt), the last answer of APNs, a token
APNs refused for good, and the counts of pushes and outcomes. Both start empty: no device has sent a token yet.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_RESULTS = ("delivered", "token_refused", "certificate_refused", "retryable", "request_error", "expired")


def _counter(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    utc = pippin.store.models.base.UTCDateTime
    op.create_table(
        "push_deliveries",
        sa.Column("udid", sa.String(length=64), nullable=False),
        sa.Column("wanted_at", utc(), nullable=True),
        sa.Column("expires_at", utc(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", utc(), nullable=True),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("next_sweep_at", utc(), nullable=True),
        sa.Column("last_push_at", utc(), nullable=True),
        sa.Column(
            "last_result",
            sa.Enum(*_RESULTS, name="pushresult", native_enum=False, length=24),
            nullable=True,
        ),
        sa.Column("last_reason", sa.String(length=64), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_apns_id", sa.String(length=64), nullable=True),
        sa.Column("refused_token", sa.String(length=200), nullable=True),
        sa.Column("token_refused_at", utc(), nullable=True),
        sa.Column("token_refused_reason", sa.String(length=64), nullable=True),
        _counter("pushes"),
        _counter("delivered"),
        _counter("token_refusals"),
        _counter("certificate_refusals"),
        _counter("retryable_failures"),
        _counter("request_errors"),
        _counter("expired"),
        sa.ForeignKeyConstraint(
            ["udid"],
            ["enrollments.udid"],
            name=op.f("fk_push_deliveries_udid_enrollments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("udid", name=op.f("pk_push_deliveries")),
    )
    with op.batch_alter_table("push_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_push_deliveries_next_attempt_at", ["next_attempt_at"], unique=False)
        batch_op.create_index("ix_push_deliveries_next_sweep_at", ["next_sweep_at"], unique=False)

    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("push_token", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("push_magic", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_column("push_magic")
        batch_op.drop_column("push_token")

    with op.batch_alter_table("push_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_push_deliveries_next_sweep_at")
        batch_op.drop_index("ix_push_deliveries_next_attempt_at")

    op.drop_table("push_deliveries")
