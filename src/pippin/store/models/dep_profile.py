"""DEP profiles as the admin defines them, and each profile's definitions at Apple, per token.

A DEP profile is Apple's kind of enrollment profile (reference section 5: what Setup Assistant shows and where
the device enrolls), not the ``.mobileconfig`` enrollment profile the device half serves; the table keeps its
first name, ``enrollment_profiles``, so that upgrading renames nothing in a database.

Apple's profiles are immutable (reference 3.5): every ``POST /profile`` yields a new UUID. So Pippin keeps one
editable :class:`DEPProfile` whose ``revision`` goes up with each edit, and a :class:`ProfileDefinition`
row for each (profile, token, revision) that Apple was given, with the UUID Apple answered.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, enum_column, utcnow


class UserAffinity(StrEnum):
    """Whether a user signs in during Setup Assistant (the seed's "user affinity")."""

    none = "none"
    with_user = "with_user"


class AssignmentStatus(StrEnum):
    """Where a device's profile assignment stands at Apple (reference 3.7, 8); values are the API's strings."""

    pending = "pending"  # queued, or being sent now
    assigned = "assigned"  # Apple answered SUCCESS for the current revision
    not_accessible = "not_accessible"  # Apple: the serial is not on this token's MDM server
    failed = "failed"  # Apple answered FAILED: not retried for 24 hours (reference 8)
    throttled = "throttled"  # Apple answered THROTTLED: retried after retry_after_seconds


class DEPProfile(Base):
    """One DEP profile, the seed's enrollment policy: what Setup Assistant shows and how the device enrolls
    (reference section 5)."""

    __tablename__ = "enrollment_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(125), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    # Bumped by every edit; definitions at Apple and device assignments refer to one revision.
    revision: Mapped[int] = mapped_column(Integer, default=1)

    user_affinity: Mapped[UserAffinity] = mapped_column(enum_column(UserAffinity, length=16), default=UserAffinity.none)
    is_supervised: Mapped[bool] = mapped_column(default=False)
    is_mdm_removable: Mapped[bool] = mapped_column(default=True)
    is_mandatory: Mapped[bool] = mapped_column(default=False)
    allow_pairing: Mapped[bool] = mapped_column(default=True)
    await_device_configured: Mapped[bool] = mapped_column(default=False)
    auto_advance_setup: Mapped[bool] = mapped_column(default=False)

    department: Mapped[str | None] = mapped_column(String(125))
    support_phone_number: Mapped[str | None] = mapped_column(String(50))
    support_email_address: Mapped[str | None] = mapped_column(String(250))
    org_magic: Mapped[str | None] = mapped_column(String(256))
    language: Mapped[str | None] = mapped_column(String(3))
    region: Mapped[str | None] = mapped_column(String(2))
    # Base64 DER certificates, as Apple takes them.
    anchor_certs: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Apple's SkipKeys: the panes Setup Assistant does not show.
    skip_setup_items: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Pippin's own policy, never sent to Apple: the OS version a device must run to enroll (e.g. "17.4"); an older
    # device that can update is told to first (``mdm/ade_enrollment.py``). Editing it keeps the revision.
    minimum_os_version: Mapped[str | None] = mapped_column(String(16))

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProfileDefinition(Base):
    """One revision of one profile as defined at Apple under one token, and the UUID Apple gave it."""

    __tablename__ = "profile_definitions"
    __table_args__ = (UniqueConstraint("profile_id", "token_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("enrollment_profiles.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("dep_tokens.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    profile_uuid: Mapped[str] = mapped_column(String(64), index=True)
    # The enrollment URL Apple was given, with its signed reference to the revision (``dep/enrollment_reference.py``).
    # A definition whose URL is not the one Pippin would give now (none recorded, or PIPPIN_SERVER_URL changed) is
    # defined again before its next assignment.
    enrollment_url: Mapped[str | None] = mapped_column(Text)
    defined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TokenDefaultProfile(Base):
    """The profile a token's newly synced devices get (``pippin profiles set-default TOKEN PROFILE``).

    A table of its own rather than a column on ``dep_tokens``: adding a foreign key to an existing SQLite table
    means copying it, and dropping the old ``dep_tokens`` would cascade to every device and sync run.
    """

    __tablename__ = "token_default_profiles"

    token_id: Mapped[int] = mapped_column(ForeignKey("dep_tokens.id", ondelete="CASCADE"), primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("enrollment_profiles.id", ondelete="CASCADE"), index=True)
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Devices synced before this moment were all looked at for the default already; the next sync looks only at
    # devices it wrote after it, so its cost follows the sync's changes, not the fleet. Unset (a new default):
    # the next sync looks at every device of the token once.
    covered_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
