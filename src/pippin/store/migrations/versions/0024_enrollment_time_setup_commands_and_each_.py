"""Enrollment-time setup commands and each enrollment's release from Setup Assistant

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 13:10:49

``setup_commands`` holds the steps an admin defines per DEP profile (a .mobileconfig sealed, or a device name
template); ``setup_releases`` each enrollment's run through them up to DeviceConfigured. Both start empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "setup_commands",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("install_profile", "device_name", name="setupcommandkind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("payload_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("name_template", sa.String(length=255), nullable=True),
        sa.Column("created_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["enrollment_profiles.id"],
            name=op.f("fk_setup_commands_profile_id_enrollment_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_setup_commands")),
    )
    with op.batch_alter_table("setup_commands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_setup_commands_profile_id"), ["profile_id"], unique=False)
    op.create_table(
        "setup_releases",
        sa.Column("udid", sa.String(length=64), nullable=False),
        sa.Column("identity_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("started_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("configured_uuid", sa.String(length=64), nullable=True),
        sa.Column("released_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["enrollment_profiles.id"],
            name=op.f("fk_setup_releases_profile_id_enrollment_profiles"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["udid"], ["enrollments.udid"], name=op.f("fk_setup_releases_udid_enrollments"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("udid", name=op.f("pk_setup_releases")),
    )


def downgrade() -> None:
    op.drop_table("setup_releases")
    with op.batch_alter_table("setup_commands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_setup_commands_profile_id"))
    op.drop_table("setup_commands")
