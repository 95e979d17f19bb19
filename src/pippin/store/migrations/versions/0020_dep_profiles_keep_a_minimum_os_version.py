"""DEP profiles keep a minimum OS version

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 18:30:30

``enrollment_profiles.minimum_os_version`` is Pippin's own enrollment policy, never sent to Apple: existing
profiles get none (every device enrolls, as before). Only a column is added, which SQLite does in place, so the
table (and the definitions and devices that refer to it) is not copied.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrollment_profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("minimum_os_version", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrollment_profiles", schema=None) as batch_op:
        batch_op.drop_column("minimum_os_version")
