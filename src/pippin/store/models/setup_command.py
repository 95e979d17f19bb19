"""Releasing a device from Setup Assistant: the enrollment-time commands an admin defines per DEP profile, and
each enrollment's release, written by the device half.

A DEP profile with ``await_device_configured`` holds its device in Setup Assistant until the MDM server sends
``DeviceConfigured`` (reference ``apple-mdm-protocol.md`` section 1, step 5). :class:`SetupCommand` is one step the
admin wants done before that, in order: a configuration profile to install (sealed: a Wi-Fi payload carries its
password) or a device name made from a template. :class:`SetupRelease` is one enrollment's run through those steps
(``mdm/setup_release.py``): the CommandUUIDs queued for it, and the DeviceConfigured that ends it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, enum_column


class SetupCommandKind(StrEnum):
    """What one enrollment-time step does (the values are what the API and ``--json`` show)."""

    #: InstallProfile with the admin's .mobileconfig.
    install_profile = "install_profile"
    #: Settings with a DeviceName made from a template (``{serial}``, ...).
    device_name = "device_name"


class SetupCommand(Base):
    """One enrollment-time step of one DEP profile; steps run in the order of their ids."""

    __tablename__ = "setup_commands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("enrollment_profiles.id", ondelete="CASCADE"), index=True)
    kind: Mapped[SetupCommandKind] = mapped_column(enum_column(SetupCommandKind, length=32))
    #: What lists show: the profile's PayloadDisplayName or PayloadIdentifier, or the name template itself.
    label: Mapped[str] = mapped_column(String(255))
    #: The sealed .mobileconfig of an ``install_profile`` step.
    payload_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The template of a ``device_name`` step.
    name_template: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(320))


class SetupRelease(Base):
    """One enrollment's release from Setup Assistant: started at its first TokenUpdate awaiting configuration.

    ``identity_fingerprint`` names the enrollment round it belongs to (each enrollment gets its own identity): a
    re-enrollment starts a new release, a repeated TokenUpdate of the same one starts nothing.
    """

    __tablename__ = "setup_releases"

    udid: Mapped[str] = mapped_column(ForeignKey("enrollments.udid", ondelete="CASCADE"), primary_key=True)
    identity_fingerprint: Mapped[str] = mapped_column(String(64))
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("enrollment_profiles.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The steps queued, in order: ``[{"uuid": ..., "request_type": ..., "label": ...}]``.
    steps: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    #: DeviceConfigured's CommandUUID, once every step was answered (at once when there are none).
    configured_uuid: Mapped[str | None] = mapped_column(String(64))
    #: When the device acknowledged DeviceConfigured: it left Setup Assistant.
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: What went wrong on the way (a step the device refused, one that could not be built): the device's problem.
    failure: Mapped[str | None] = mapped_column(Text)
