"""Organisation users, enrollment sign-in states and manual enrollment links

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 10:22:30

``directory_users`` is the organisation's local directory (who signs in on a device's enrollment page and becomes
its primary user); ``enrollment_web_states`` holds the single-use state of each opened sign-in page, as a hash,
bound to the device's serial number and UDID; ``enrollment_links`` the manual enrollment links, their tokens as
hashes and the challenge of each sealed. All three start empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("created_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("disabled_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_users")),
        sa.UniqueConstraint("username", name=op.f("uq_directory_users_username")),
    )
    op.create_table(
        "enrollment_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("created_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("challenge_encrypted", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_links")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_enrollment_links_token_sha256")),
    )
    op.create_table(
        "enrollment_web_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state_sha256", sa.String(length=64), nullable=False),
        sa.Column("serial_number", sa.String(length=64), nullable=False),
        sa.Column("udid", sa.String(length=64), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("profile_revision", sa.Integer(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("used_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_web_states")),
        sa.UniqueConstraint("state_sha256", name=op.f("uq_enrollment_web_states_state_sha256")),
    )
    with op.batch_alter_table("enrollment_web_states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrollment_web_states_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("enrollment_web_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrollment_web_states_expires_at"))

    op.drop_table("enrollment_web_states")
    op.drop_table("enrollment_links")
    op.drop_table("directory_users")
