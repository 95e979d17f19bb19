"""Check-in: the identity, device facts and sealed tokens on enrollments, and the raw check-in messages

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-02 10:45:00

An enrollment gains what its Authenticate and TokenUpdate check-ins bring: the identity certificate's
fingerprint, the push topic, OS version, build, product, IMEI/MEID, the primary user of the enrollment
challenge, the sealed UnlockToken and bootstrap token, and AwaitingConfiguration. ``checkin_messages`` keeps the
last messages of each enrollment as received, sealed. The new ``enrolling`` status needs no change: statuses
are stored as text with no CHECK constraint, and an enrolling device counts as not contacted, so the state
count triggers of 0011 stay as they are. Columns are added in place (no table rebuild), so those triggers
survive on SQLite too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None

_TEXT_COLUMNS = (
    ("identity_fingerprint", 64),
    ("topic", 255),
    ("os_version", 32),
    ("build_version", 32),
    ("product_name", 64),
    ("imei", 32),
    ("meid", 32),
)


def upgrade() -> None:
    utc = pippin.store.models.base.UTCDateTime
    with op.batch_alter_table("enrollments", schema=None, recreate="never") as batch_op:
        for name, length in _TEXT_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))
        batch_op.add_column(sa.Column("primary_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("authenticated_at", utc(), nullable=True))
        batch_op.add_column(sa.Column("unlock_token_encrypted", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("bootstrap_token_encrypted", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("awaiting_configuration", sa.Boolean(), nullable=True))
        batch_op.create_index("ix_enrollments_identity_fingerprint", ["identity_fingerprint"], unique=False)

    op.create_table(
        "checkin_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("udid", sa.String(length=64), nullable=False),
        sa.Column("message_type", sa.String(length=32), nullable=False),
        sa.Column("received_at", utc(), nullable=False),
        sa.Column("identity_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("raw_encrypted", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["udid"], ["enrollments.udid"], name=op.f("fk_checkin_messages_udid_enrollments"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_messages")),
    )
    op.create_index("ix_checkin_messages_udid_id", "checkin_messages", ["udid", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_checkin_messages_udid_id", table_name="checkin_messages")
    op.drop_table("checkin_messages")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollments_identity_fingerprint")
        for name in ("awaiting_configuration", "bootstrap_token_encrypted", "unlock_token_encrypted"):
            batch_op.drop_column(name)
        batch_op.drop_column("authenticated_at")
        batch_op.drop_column("primary_user_id")
        for name, _ in reversed(_TEXT_COLUMNS):
            batch_op.drop_column(name)
