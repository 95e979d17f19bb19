"""Enrollment URLs name their profile and revision: record each definition's URL, and send assigned devices again

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:30:00

Definitions made before have no URL on record, so each is defined again at Apple when next needed; the devices
Apple holds such a definition for are queued again, so Apple sends each of them to a URL that names its revision.
Devices waiting out one of Apple's cooldowns (failed, throttled) keep it and get the new definition when it ends.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("profile_definitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enrollment_url", sa.Text(), nullable=True))
    op.execute(
        "UPDATE devices SET assignment_status = 'pending', assignment_retry_at = NULL "
        "WHERE assignment_status = 'assigned' AND assigned_profile_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("profile_definitions", schema=None) as batch_op:
        batch_op.drop_column("enrollment_url")
