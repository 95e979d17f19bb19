"""The simulator's own state: Apple's organisation, MDM servers, tokens, devices, their change log, profiles,
and the Push Certificates Portal's certificate authorities and issued push certificates.

Kept apart from Pippin's models on purpose, so that one bug cannot hide on both sides of the wire.
Stored in SQLite under the simulator's data directory, created with ``create_all`` (it is a test double
with no upgrade path to promise).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class SimDateTime(TypeDecorator[datetime]):
    """Naive UTC in SQLite, aware UTC in Python."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class SimBase(DeclarativeBase):
    pass


class SimOrganization(SimBase):
    """The one Apple Business Manager organisation the simulator plays, with its terms and test controls."""

    __tablename__ = "sim_organization"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_name: Mapped[str] = mapped_column(String(255))
    org_email: Mapped[str] = mapped_column(String(320))
    org_phone: Mapped[str] = mapped_column(String(64))
    org_address: Mapped[str] = mapped_column(Text)
    org_id: Mapped[str] = mapped_column(String(64))
    org_id_hash: Mapped[str] = mapped_column(String(128))
    org_type: Mapped[str] = mapped_column(String(16), default="org")
    org_version: Mapped[str] = mapped_column(String(8), default="v2")
    # New terms published and not yet accepted: every DEP call answers 403 T_C_NOT_SIGNED.
    terms_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    # The simulator's clock runs this many seconds ahead of the real one (POST /portal/clock).
    clock_offset_seconds: Mapped[float] = mapped_column(default=0.0)
    # Fault rates per endpoint, as set with PUT /portal/faults.
    faults: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Secret for the MAC on cursors, so a client cannot forge one.
    cursor_secret: Mapped[str] = mapped_column(String(128))
    # How long an X-ADM-Auth-Session lives (PUT /portal/session); Apple does not document it, 5 minutes is safe.
    session_ttl_seconds: Mapped[int] = mapped_column(Integer, default=300)


class SimMDMServer(SimBase):
    """An "MDM server" as an admin creates it in Business Manager, with the certificate it uploaded."""

    __tablename__ = "sim_mdm_servers"

    id: Mapped[int] = mapped_column(primary_key=True)
    server_uuid: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    admin_apple_id: Mapped[str] = mapped_column(String(320))
    public_key_pem: Mapped[str] = mapped_column(Text)
    access_denied: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(SimDateTime())
    # Deleted in the portal: kept so its token answers 403 ACCESS_DENIED instead of vanishing.
    deleted_at: Mapped[datetime | None] = mapped_column(SimDateTime(), default=None)


class SimServerToken(SimBase):
    """One issued server token. Only the newest one of a server is valid; downloading again revokes it."""

    __tablename__ = "sim_server_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("sim_mdm_servers.id"), index=True)
    consumer_key: Mapped[str] = mapped_column(String(200), index=True)
    consumer_secret: Mapped[str] = mapped_column(String(200))
    access_token: Mapped[str] = mapped_column(String(200), unique=True)
    access_secret: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(SimDateTime())
    expires_at: Mapped[datetime] = mapped_column(SimDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(SimDateTime())
    # The Apple Account that downloaded this token: /account reports it as admin_id (reference 3.1).
    downloaded_by: Mapped[str | None] = mapped_column(String(320), default=None)


class SimSession(SimBase):
    """An ``X-ADM-Auth-Session`` issued by ``GET /session``."""

    __tablename__ = "sim_sessions"

    token: Mapped[str] = mapped_column(String(255), primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("sim_mdm_servers.id"))
    server_token_id: Mapped[int] = mapped_column(ForeignKey("sim_server_tokens.id"))
    created_at: Mapped[datetime] = mapped_column(SimDateTime())
    expires_at: Mapped[datetime] = mapped_column(SimDateTime())


class SimNonce(SimBase):
    """OAuth nonces already used, so a replayed ``/session`` request is refused."""

    __tablename__ = "sim_nonces"

    consumer_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(SimDateTime(), index=True)


class SimDevice(SimBase):
    """A device the organisation owns, and (when assigned) the MDM server and profile it is assigned to."""

    __tablename__ = "sim_devices"
    __table_args__ = (Index("ix_sim_devices_server_assign_seq", "server_id", "assign_seq"),)

    serial_number: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(255))
    color: Mapped[str] = mapped_column(String(64))
    device_family: Mapped[str] = mapped_column(String(32))
    os: Mapped[str] = mapped_column(String(32))
    order_number: Mapped[str] = mapped_column(String(64), index=True)
    asset_tag: Mapped[str | None] = mapped_column(String(128))
    # Protocol-version-10 identifiers (eid, MAC addresses, imei and meid lists).
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(SimDateTime())

    server_id: Mapped[int | None] = mapped_column(ForeignKey("sim_mdm_servers.id"))
    # Sequence number of the event that assigned the device to its current server: fetch pages by it.
    assign_seq: Mapped[int | None] = mapped_column(Integer)
    device_assigned_date: Mapped[datetime | None] = mapped_column(SimDateTime())
    device_assigned_by: Mapped[str | None] = mapped_column(String(320))

    profile_uuid: Mapped[str | None] = mapped_column(String(32))
    profile_status: Mapped[str] = mapped_column(String(16), default="empty")
    profile_assign_time: Mapped[datetime | None] = mapped_column(SimDateTime())
    profile_push_time: Mapped[datetime | None] = mapped_column(SimDateTime())
    # After a FAILED assignment Apple wants 24 hours; THROTTLED devices wait retry_after_seconds.
    assignment_blocked_until: Mapped[datetime | None] = mapped_column(SimDateTime())
    # What an early retry answers while blocked: "FAILED" (24-hour cooldown) or "THROTTLED".
    assignment_block_status: Mapped[str | None] = mapped_column(String(16))
    # Set by POST /device/activationlock; a second lock answers DEVICE_ALREADY_LOCKED.
    activation_locked_at: Mapped[datetime | None] = mapped_column(SimDateTime())


class SimDeviceEvent(SimBase):
    """The change log behind ``/devices/sync``: one row per added, modified or deleted device per server."""

    __tablename__ = "sim_device_events"
    __table_args__ = (
        Index("ix_sim_device_events_server_seq", "server_id", "seq"),
        # "Had this device been on this server before?" decides added vs modified on a move (reference 8).
        Index("ix_sim_device_events_server_serial", "server_id", "serial_number"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("sim_mdm_servers.id"))
    serial_number: Mapped[str] = mapped_column(String(64))
    op_type: Mapped[str] = mapped_column(String(16))
    op_date: Mapped[datetime] = mapped_column(SimDateTime())
    # The device record as it was at the event, without op_type/op_date (added when served).
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)


class SimProfile(SimBase):
    """A profile defined with ``POST /profile``; immutable, a new UUID per define."""

    __tablename__ = "sim_profiles"

    profile_uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("sim_mdm_servers.id"), index=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(SimDateTime())


class SimCertificateAuthority(SimBase):
    """One of the simulator's certificate authorities (``push_ca.py``), created on first use and kept for good.

    The private key is kept in the simulator's database as PKCS#8 PEM, like the simulator's other secrets
    (cursor MAC key, OAuth credentials): the simulator is a test double on a loopback port, not a vault.
    """

    __tablename__ = "sim_certificate_authorities"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    certificate_pem: Mapped[str] = mapped_column(Text)
    private_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(SimDateTime())


class SimPushCertificate(SimBase):
    """A push certificate issued by the Push Certificates Portal, owned by the Apple ID that uploaded its request.

    A renewal is a new row with the same ``topic``; the row it replaced keeps its certificate (still valid until
    it expires, as Apple's are) and gets ``renewed_at``.
    """

    __tablename__ = "sim_push_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    topic: Mapped[str] = mapped_column(String(128), index=True)
    apple_id: Mapped[str] = mapped_column(String(320), index=True)
    certificate_pem: Mapped[str] = mapped_column(Text)
    # Who signed the request: the MDM vendor certificate's subject, as the portal shows it.
    vendor: Mapped[str] = mapped_column(String(255))
    not_before: Mapped[datetime] = mapped_column(SimDateTime())
    not_after: Mapped[datetime] = mapped_column(SimDateTime())
    created_at: Mapped[datetime] = mapped_column(SimDateTime())
    # The certificate this one renewed (same topic), by serial.
    renewed_from_serial: Mapped[str | None] = mapped_column(String(64), default=None)
    renewed_at: Mapped[datetime | None] = mapped_column(SimDateTime(), default=None)


class SimAPNsToken(SimBase):
    """A device token APNs gave a device for one topic; unregistered tokens are kept so pushes answer 410."""

    __tablename__ = "sim_apns_tokens"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    topic: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(SimDateTime())
    # Set by DELETE /apns/tokens/{token}: from then on a push answers 410 Unregistered with this time.
    unregistered_at: Mapped[datetime | None] = mapped_column(SimDateTime(), default=None)


class SimDeviceIdentity(SimBase):
    """A device's identity from the simulator's device CA (``factory_ca.py``): made on first request, then kept.

    Like the CAs' keys, the device key is kept in clear: a simulated device's key guards nothing.
    """

    __tablename__ = "sim_device_identities"

    serial_number: Mapped[str] = mapped_column(ForeignKey("sim_devices.serial_number"), primary_key=True)
    private_key_pem: Mapped[str] = mapped_column(Text)
    certificate_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(SimDateTime())


class SimReplacement(SimBase):
    """A device AppleCare gave the organisation in place of another (``GET /device/replacementDetails``)."""

    __tablename__ = "sim_replacements"

    serial_number: Mapped[str] = mapped_column(ForeignKey("sim_devices.serial_number"), primary_key=True)
    original_serial_number: Mapped[str] = mapped_column(String(64))
    replacement_date: Mapped[date] = mapped_column(Date)


class SimServiceDiscovery(SimBase):
    """An MDM server's account-driven enrollment service discovery URL (``/account-driven-enrollment/profile``)."""

    __tablename__ = "sim_service_discovery"

    server_id: Mapped[int] = mapped_column(ForeignKey("sim_mdm_servers.id"), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(SimDateTime())


class SimBetaProgram(SimBase):
    """The organisation's AppleSeed for IT settings: whether beta access is on, and its beta enrollment tokens.

    One row, made with default tokens on first use (``GET /os-beta-enrollment/tokens``).
    """

    __tablename__ = "sim_beta_program"

    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # [{"token", "title", "os"}, ...] as Apple's SeedBuildToken objects.
    tokens: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
