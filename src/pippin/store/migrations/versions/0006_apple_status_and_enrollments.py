"""Split the device state: Apple's side on devices (apple_status), the enrollment side in enrollments

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:10:00.000000

``enrollment_state`` becomes ``apple_status`` by renaming the column in place (``ALTER TABLE ... RENAME COLUMN``,
SQLite 3.25 and later), never by copying the table: a batch copy drops ``devices``, and with foreign keys on,
dropping a table that others reference deletes or nulls their rows. Every device keeps its row and id; a
``removed`` device stays removed at Apple, every other state means Apple still assigns it to this server.
The enrollments table is new and starts empty: no device had enrolled before the device half existed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pippin.store.models.base

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_devices_token_state", table_name="devices")
    op.execute("ALTER TABLE devices RENAME COLUMN enrollment_state TO apple_status")
    op.execute(
        "UPDATE devices SET apple_status = CASE WHEN apple_status = 'removed' THEN 'removed' ELSE 'assigned' END"
    )
    op.create_index("ix_devices_token_apple_status", "devices", ["token_id", "apple_status"], unique=False)
    # The inventory's orders, filters and counts (store/models/device.py says which index serves what).
    op.create_index("ix_devices_synced_serial", "devices", ["last_synced_at", "serial_number"], unique=False)
    op.create_index(
        "ix_devices_state_inputs",
        "devices",
        ["apple_status", "profile_status", "assigned_profile_id", "assigned_revision", "serial_number"],
        unique=False,
    )
    op.create_index(
        "ix_devices_search", "devices", ["serial_number", "token_id", "model", "asset_tag", "description"], unique=False
    )
    op.create_table(
        "enrollments",
        sa.Column("udid", sa.String(length=64), nullable=False),
        sa.Column("serial_number", sa.String(length=64), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum("enrolled", "unenrolled", "failed", name="enrollmentstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("profile_revision", sa.Integer(), nullable=True),
        sa.Column("first_contact_at", pippin.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("enrolled_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_seen_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("unenrolled_at", pippin.store.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_enrollments_device_id_devices"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["enrollment_profiles.id"],
            name=op.f("fk_enrollments_profile_id_enrollment_profiles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("udid", name=op.f("pk_enrollments")),
        sa.UniqueConstraint("device_id", name=op.f("uq_enrollments_device_id")),
    )
    op.create_index(op.f("ix_enrollments_serial_number"), "enrollments", ["serial_number"], unique=False)
    op.create_index(
        "ix_enrollments_device_state",
        "enrollments",
        ["device_id", "status", "profile_id", "profile_revision"],
        unique=False,
    )


def downgrade() -> None:
    # The old single column can say "enrolled"; say it for the devices whose enrollment does, before it goes.
    op.execute(
        "UPDATE devices SET apple_status = 'enrolled' WHERE apple_status = 'assigned' AND id IN "
        "(SELECT device_id FROM enrollments WHERE status = 'enrolled' AND device_id IS NOT NULL)"
    )
    op.execute("UPDATE devices SET apple_status = 'not_contacted' WHERE apple_status = 'assigned'")
    op.drop_index("ix_enrollments_device_state", table_name="enrollments")
    op.drop_index(op.f("ix_enrollments_serial_number"), table_name="enrollments")
    op.drop_table("enrollments")
    op.drop_index("ix_devices_search", table_name="devices")
    op.drop_index("ix_devices_state_inputs", table_name="devices")
    op.drop_index("ix_devices_synced_serial", table_name="devices")
    op.drop_index("ix_devices_token_apple_status", table_name="devices")
    op.execute("ALTER TABLE devices RENAME COLUMN apple_status TO enrollment_state")
    op.create_index("ix_devices_token_state", "devices", ["token_id", "enrollment_state"], unique=False)
