"""Record which master key seals the secrets (a check value, never the key), and keep signing keys across rotation

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 00:55:09

Both tables start empty: the migration cannot know the master key. The first process to use the database after
the upgrade writes the check value, after making sure every secret already stored is sealed with its key (so a
process with another key cannot claim a database that is not its own), and stores the enrollment-URL signing key
as the HKDF of that master key, the key Pippin derived until now: the URLs Apple holds keep verifying.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "master_key_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("check_value", sa.String(length=128), nullable=False),
        sa.Column("created_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("rotated_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_master_key_checks")),
    )
    op.create_table(
        "signing_keys",
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("purpose", name=op.f("pk_signing_keys")),
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_table("master_key_checks")
