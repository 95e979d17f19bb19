"""The SCEP CA, enrollment challenges and issued device certificates

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 10:23:25

``pki_authorities`` holds the SCEP CA that issues device identities and the server identity that signs
enrollment profiles (keys sealed with the master key); ``enrollment_challenges`` the hashes of one-time SCEP
challenges with the binding each was made for; ``issued_certificates`` every identity certificate issued, by
fingerprint, with the challenge it was issued against. All start empty: the CA is made on first use.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrollment_challenges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("challenge_hash", sa.String(length=64), nullable=False),
        sa.Column("serial_number", sa.String(length=64), nullable=True),
        sa.Column("udid", sa.String(length=64), nullable=True),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("profile_revision", sa.Integer(), nullable=True),
        sa.Column("primary_user_id", sa.Integer(), nullable=True),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("uses_left", sa.Integer(), nullable=False),
        sa.Column("expires_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("created_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_challenges")),
        sa.UniqueConstraint("challenge_hash", name=op.f("uq_enrollment_challenges_challenge_hash")),
    )
    op.create_table(
        "pki_authorities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("not_after", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("server_identity_key_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("server_identity_certificate_der", sa.LargeBinary(), nullable=True),
        sa.Column("server_identity_not_after", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("created_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pki_authorities")),
    )
    op.create_table(
        "issued_certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=False),
        sa.Column("not_before", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("not_after", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("challenge_id", sa.Integer(), nullable=False),
        sa.Column("renewed_from_id", sa.Integer(), nullable=True),
        sa.Column("udid", sa.String(length=64), nullable=True),
        sa.Column("revoked_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("created_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["challenge_id"],
            ["enrollment_challenges.id"],
            name=op.f("fk_issued_certificates_challenge_id_enrollment_challenges"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["renewed_from_id"],
            ["issued_certificates.id"],
            name=op.f("fk_issued_certificates_renewed_from_id_issued_certificates"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issued_certificates")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_issued_certificates_fingerprint")),
        sa.UniqueConstraint("serial", name=op.f("uq_issued_certificates_serial")),
    )
    with op.batch_alter_table("issued_certificates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issued_certificates_challenge_id"), ["challenge_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_issued_certificates_udid"), ["udid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("issued_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issued_certificates_udid"))
        batch_op.drop_index(batch_op.f("ix_issued_certificates_challenge_id"))

    op.drop_table("issued_certificates")
    op.drop_table("pki_authorities")
    op.drop_table("enrollment_challenges")
