"""Pippin's shapes for the inventory: one device, a page, and the filters and orders a page is asked for.

What REST returns and ``--json`` prints, with the same keys; the console renders the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from pippin.inventory.state import DeviceState
from pippin.mdm.setup_schemas import SetupProblemRead
from pippin.store.models import AppleStatus, AssignmentStatus, EnrollmentStatus, ProfileStatus


class DeviceSort(StrEnum):
    """What a device list can be ordered by; every order is completed by the serial number."""

    serial = "serial"
    model = "model"
    asset_tag = "asset_tag"
    state = "state"
    last_synced = "last_synced"


class SortDirection(StrEnum):
    asc = "asc"
    desc = "desc"


class AssignmentFilter(StrEnum):
    """Pippin's assignment statuses, and ``none`` for devices with no assignment asked for."""

    pending = AssignmentStatus.pending.value
    assigned = AssignmentStatus.assigned.value
    not_accessible = AssignmentStatus.not_accessible.value
    failed = AssignmentStatus.failed.value
    throttled = AssignmentStatus.throttled.value
    none = "none"


@dataclass(frozen=True)
class DeviceFilters:
    """Which devices a list shows; every filter given must match (unset: any). The service checks the lengths."""

    state: DeviceState | None = None
    token: str | None = None
    profile: str | None = None
    assignment: AssignmentFilter | None = None
    search: str | None = None
    cannot_enroll: bool = False
    #: Only devices whose current push token APNs refused (``inventory/reachability.py``).
    unreachable: bool = False


#: The enrollment's own columns a device's row shows, by the same names.
ENROLLMENT_FIELDS = (
    "enrolled_at", "first_contact_at", "last_seen_at", "udid", "os_version", "build_version", "product_name",
    "primary_user_id", "imei", "meid", "device_name", "model_name", "capacity_gb", "available_capacity_gb",
    "battery_level", "wifi_mac", "supervised", "activation_lock_enabled", "find_my_enabled", "lost_mode_enabled",
    "information_at", "awaiting_configuration",
)  # fmt: skip


class DeviceRead(BaseModel):
    """One corporate-owned device: Apple's fields and side, its enrollment, and the state derived from both.

    A device enrolled without a DEP record (through a manual enrollment link) has its enrollment's fields only:
    Apple's are null, and its serial number is the UDID when the device never reported one.
    """

    serial_number: str
    model: str | None
    description: str | None
    color: str | None
    asset_tag: str | None
    os: str | None
    device_family: str | None
    enrollment_state: DeviceState = Field(
        description="The state admins see, derived from Apple's side and the enrollment: not_contacted until the "
        "device enrolls, pending_reset when it enrolled with another profile revision than the one now assigned, "
        "removed when Apple no longer assigns it to this server."
    )
    apple_status: AppleStatus | None = Field(
        description="Apple's side: assigned to this MDM server, or removed; null for a device with no DEP record "
        "(enrolled through a manual enrollment link)."
    )
    profile_status: ProfileStatus | None = Field(description="Apple's profile status (null: Apple sent none).")
    profile_uuid: str | None
    profile_assign_time: datetime | None
    profile_push_time: datetime | None
    device_assigned_date: datetime | None
    device_assigned_by: str | None
    last_op_type: str | None = Field(description="Apple's last reported change: added, modified or deleted.")
    last_op_date: datetime | None
    token: str | None = Field(description="Name of the DEP token (MDM server) the device is assigned through.")
    first_seen_at: datetime | None = Field(description="When a sync first brought the device (null: no DEP record).")
    last_synced_at: datetime | None = Field(description="The device's last sync from Apple (null: no DEP record).")
    removed_at: datetime | None
    profile: str | None = Field(default=None, description="The enrollment profile Pippin assigns the device.")
    assigned_revision: int | None = Field(default=None, description="The revision of that profile.")
    assignment_status: AssignmentStatus | None = Field(
        default=None,
        description="Pippin's profile assignment: pending, assigned, failed (retried after 24 hours), throttled, "
        "not_accessible, or null (none asked for).",
    )
    assignment_retry_at: datetime | None = Field(default=None, description="When a waiting assignment is sent again.")
    assignment_error: str | None = Field(default=None, description="Apple's last word on the assignment.")
    can_enroll: bool = Field(default=False, description="False while Apple holds no profile for the device.")
    cannot_enroll: bool = Field(
        default=False,
        description="Assigned at Apple, not enrolled, and Apple holds no profile: switched on, it would not enroll.",
    )
    enrollment_status: EnrollmentStatus | None = Field(
        default=None,
        description="The device's MDM enrollment: enrolling (authenticated, no push token yet), enrolled, "
        "unenrolled, failed, or null (none yet).",
    )
    enrolled_at: datetime | None = None
    first_contact_at: datetime | None = Field(default=None, description="The device's first check-in.")
    last_seen_at: datetime | None = Field(default=None, description="The device's last check-in.")
    udid: str | None = Field(default=None, description="The UDID the enrolled device reported.")
    os_version: str | None = Field(default=None, description="The OS version the device reported at check-in.")
    build_version: str | None = Field(default=None, description="The OS build the device reported at check-in.")
    product_name: str | None = Field(default=None, description="The device's product type, e.g. iPhone16,2.")
    primary_user_id: int | None = Field(
        default=None, description="The organisation's user the device was enrolled for (user affinity), by id."
    )
    imei: str | None = Field(default=None, description="The cellular device's IMEI, as it reported it.")
    meid: str | None = Field(default=None, description="The cellular device's MEID, as it reported it.")
    # What the device's last DeviceInformation answer said (null until one was answered).
    device_name: str | None = Field(default=None, description="The device's name, e.g. Reception iPhone.")
    model_name: str | None = Field(default=None, description="Its model name, e.g. iPhone or iPad.")
    capacity_gb: float | None = Field(default=None, description="Its storage, in GB.")
    available_capacity_gb: float | None = Field(default=None, description="Its free storage, in GB.")
    battery_level: float | None = Field(default=None, description="Its battery, from 0 to 1.")
    wifi_mac: str | None = Field(default=None, description="Its Wi-Fi MAC address.")
    supervised: bool | None = Field(default=None, description="Whether it says it is supervised.")
    activation_lock_enabled: bool | None = Field(default=None, description="Whether Activation Lock is on.")
    find_my_enabled: bool | None = Field(default=None, description="Whether Find My is on.")
    lost_mode_enabled: bool | None = Field(default=None, description="Whether it is in Lost Mode.")
    information_at: datetime | None = Field(default=None, description="When it last answered DeviceInformation.")
    primary_user: str | None = Field(
        default=None, description="That user's username (null when none, or when the user was deleted)."
    )
    awaiting_configuration: bool | None = Field(
        default=None,
        description="The device waits in Setup Assistant for DeviceConfigured (its TokenUpdate said so); null: "
        "it never said.",
    )
    setup_problem: SetupProblemRead | None = Field(
        default=None,
        description="Why its release from Setup Assistant needs a look: stuck longer than PIPPIN_SETUP_STUCK_AFTER "
        "(with the step it waits on), or a step that failed. Null when none, and in lists that do not ask.",
    )
    has_dep_record: bool = Field(
        default=True, description="False for a device enrolled without Apple's DEP (a manual enrollment link)."
    )
    unreachable: bool = Field(
        default=False,
        description="True when APNs refused the push token the device has now: Pippin cannot wake it (no command "
        "reaches it) until the device sends a new token, which it does when it next checks in by itself.",
    )
    unreachable_reason: str | None = Field(
        default=None, description="APNs's reason for refusing that token, e.g. BadDeviceToken or Unregistered."
    )
    unreachable_since: datetime | None = Field(default=None, description="When APNs refused that token.")


class InventoryPage(BaseModel):
    """A page of the inventory; pass ``next_cursor`` back as ``cursor`` for the next one (null at the end)."""

    devices: list[DeviceRead]
    next_cursor: str | None
