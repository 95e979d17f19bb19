"""Bulk erase requests waiting for a second admin's approval

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 08:10:00

``command_approvals`` holds each bulk erase an admin asked for (its payload sealed), who approved it and how far
its queuing came; ``command_approval_targets`` the enrollments each would erase, fixed when it was asked for.
Both start empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "command_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_type", sa.String(length=64), nullable=False),
        sa.Column("payload_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("selection", sa.String(length=500), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=320), nullable=False),
        sa.Column("requested_via", sa.String(length=16), nullable=False),
        sa.Column("requested_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("approved_by", sa.String(length=320), nullable=True),
        sa.Column("approved_via", sa.String(length=16), nullable=True),
        sa.Column("approved_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("bulk_id", sa.String(length=36), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("queued_through", sa.String(length=64), nullable=True),
        sa.Column("finished_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_command_approvals")),
    )
    op.create_table(
        "command_approval_targets",
        sa.Column("approval_id", sa.Integer(), nullable=False),
        sa.Column("udid", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["approval_id"],
            ["command_approvals.id"],
            name=op.f("fk_command_approval_targets_approval_id_command_approvals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["udid"],
            ["enrollments.udid"],
            name=op.f("fk_command_approval_targets_udid_enrollments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("approval_id", "udid", name=op.f("pk_command_approval_targets")),
    )


def downgrade() -> None:
    op.drop_table("command_approval_targets")
    op.drop_table("command_approvals")
