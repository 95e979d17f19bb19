"""The organisation's push certificate and the vendor certificate that signs its request

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 05:47:48

Two new tables, each of one row at most, both empty after the upgrade: an organisation starts its push
certificate with `pippin push csr`. Their private keys are sealed with the master key (``store/sealed.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pending_private_key_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("pending_csr_pem", sa.Text(), nullable=True),
        sa.Column("pending_created_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("certificate_pem", sa.Text(), nullable=True),
        sa.Column("topic", sa.String(length=255), nullable=True),
        sa.Column("not_after", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("apple_id", sa.String(length=320), nullable=True),
        sa.Column("uploaded_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("refused_reason", sa.Text(), nullable=True),
        sa.Column("refused_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("created_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_certificates")),
    )
    op.create_table(
        "push_vendor_certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("chain_pem", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("not_after", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("imported_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_vendor_certificates")),
    )


def downgrade() -> None:
    op.drop_table("push_vendor_certificates")
    op.drop_table("push_certificates")
