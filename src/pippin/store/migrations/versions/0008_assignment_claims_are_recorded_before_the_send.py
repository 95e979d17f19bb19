"""Record each assignment batch's claim before it is sent, so a runner that died mid-send is reconciled

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:00:00

A device sent to Apple keeps the claim of the runner that sent it until Apple's answer is stored; after a crash
the next runner asks Apple for the device's profile first and sends it again only if Apple does not hold it.
Devices claimed before this revision have no claim on record and are sent again when their lease is over, as
they were before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignment_claim", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("assignment_claim")
