"""One MDM enrollment of one device: the enrollment side of a device's state, written only by the device half.

An enrollment is keyed by the UDID the device reports (reference ``apple-mdm-protocol.md``, check-in), not by the
serial number: a device enrolled through a manual enrollment link has an enrollment and no DEP record, so
``device_id`` (the DEP record, when there is one) and ``serial_number`` (when the device told it) may be null.
The sync never writes here, and the device half never writes Apple's columns on ``devices``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, enum_column, utcnow


class EnrollmentStatus(StrEnum):
    """Where one enrollment stands, as the device half records it."""

    #: Authenticated (the identity is bound to the UDID), no TokenUpdate yet: not pushed, not yet managed.
    enrolling = "enrolling"
    #: Authenticated and given its push token (TokenUpdate): the device is managed.
    enrolled = "enrolled"
    #: The device checked out (CheckOut), or was erased, after having enrolled.
    unenrolled = "unenrolled"
    #: The device made contact but the enrollment could not be completed.
    failed = "failed"


class Enrollment(Base):
    """A device's enrollment with Pippin, and the profile revision it enrolled with.

    ``profile_id`` and ``profile_revision`` are what the device got in Setup Assistant; when the device's assigned
    profile or revision later differs, the device must be erased to take it (the derived state ``pending_reset``).
    """

    __tablename__ = "enrollments"
    # The enrollment side of the derived state, read from the index alone when the inventory sorts or counts.
    __table_args__ = (Index("ix_enrollments_device_state", "device_id", "status", "profile_id", "profile_revision"),)

    udid: Mapped[str] = mapped_column(String(64), primary_key=True)
    serial_number: Mapped[str | None] = mapped_column(String(64), index=True)
    # At most one enrollment per DEP record, so the inventory joins a device to its enrollment one to one.
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"), unique=True)
    status: Mapped[EnrollmentStatus] = mapped_column(enum_column(EnrollmentStatus, length=16))
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("enrollment_profiles.id", ondelete="SET NULL"))
    profile_revision: Mapped[int | None] = mapped_column(Integer)

    first_contact_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unenrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # From the device's TokenUpdate check-in (reference section 2): where APNs reaches it, and the value a push
    # carries. ``push_token`` is the lowercase hex of the Token bytes; ``push_magic`` wakes only this device's
    # MDM client, which then authenticates itself, so it is kept as sent but never logged or shown in full.
    push_token: Mapped[str | None] = mapped_column(String(200))
    push_magic: Mapped[str | None] = mapped_column(String(200))

    # From the Authenticate check-in (reference section 2): the identity certificate that speaks for the device
    # (lowercase hex SHA-256 of its DER, as ``IssuedCertificate.fingerprint``), the push topic it enrolled with,
    # and the facts it reports about itself.
    identity_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    topic: Mapped[str | None] = mapped_column(String(255))
    os_version: Mapped[str | None] = mapped_column(String(32))
    build_version: Mapped[str | None] = mapped_column(String(32))
    product_name: Mapped[str | None] = mapped_column(String(64))
    imei: Mapped[str | None] = mapped_column(String(32))
    meid: Mapped[str | None] = mapped_column(String(32))
    #: The organisation's user the enrollment challenge was bound to (user affinity), when there was one.
    primary_user_id: Mapped[int | None] = mapped_column(Integer)
    authenticated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # From TokenUpdate and the bootstrap token check-ins: secrets that clear a passcode or unlock the device's
    # keys, kept sealed by the master key (``store/sealed.py``). A TokenUpdate without UnlockToken keeps the one
    # sent before.
    unlock_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    bootstrap_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: True while the device waits in Setup Assistant for DeviceConfigured (TokenUpdate ``AwaitingConfiguration``).
    awaiting_configuration: Mapped[bool | None] = mapped_column(Boolean)

    # From the device's last DeviceInformation answer (``mdm/command_answers.py``; Apple's
    # ``mdm/commands/information.device.yaml`` names the keys): what the inventory shows of the device itself.
    # Null until the device answers, and a key the device did not report keeps the value it had.
    device_name: Mapped[str | None] = mapped_column(String(255))
    model: Mapped[str | None] = mapped_column(String(64))
    model_name: Mapped[str | None] = mapped_column(String(64))
    #: ``DeviceCapacity`` and ``AvailableDeviceCapacity``: base-10 gigabytes, as Apple reports them.
    capacity_gb: Mapped[float | None] = mapped_column(Float)
    available_capacity_gb: Mapped[float | None] = mapped_column(Float)
    #: ``BatteryLevel``: 0.0 to 1.0 (Apple's -1.0, "unknown", is kept as null).
    battery_level: Mapped[float | None] = mapped_column(Float)
    wifi_mac: Mapped[str | None] = mapped_column(String(32))
    supervised: Mapped[bool | None] = mapped_column(Boolean)
    activation_lock_enabled: Mapped[bool | None] = mapped_column(Boolean)
    #: ``IsDeviceLocatorServiceEnabled``: Find My is on.
    find_my_enabled: Mapped[bool | None] = mapped_column(Boolean)
    #: ``IsMDMLostModeEnabled``: the device is in MDM lost mode.
    lost_mode_enabled: Mapped[bool | None] = mapped_column(Boolean)
    #: When the device last answered DeviceInformation.
    information_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
