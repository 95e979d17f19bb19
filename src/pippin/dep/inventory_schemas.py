"""Pippin's shapes for the device inventory and the sync's health: what REST returns and ``--json`` prints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

#: Readable labels for the enrollment states, as the "All corporate-owned devices" list shows them.
ENROLLMENT_STATE_LABELS = {
    "not_contacted": "Not contacted",
    "enrolled": "Enrolled",
    "pending_reset": "Pending reset",
    "failed": "Failed",
    "blocked": "Blocked",
    "removed": "Removed",
}


class DeviceRead(BaseModel):
    """One corporate-owned device: Apple's fields, the token it came through, and its enrollment state."""

    model_config = ConfigDict(from_attributes=True)

    serial_number: str
    model: str | None
    description: str | None
    color: str | None
    asset_tag: str | None
    os: str | None
    device_family: str | None
    profile_status: str | None = Field(description="Apple's profile status: empty, assigned, pushed or removed.")
    profile_uuid: str | None
    profile_assign_time: datetime | None
    profile_push_time: datetime | None
    device_assigned_date: datetime | None
    device_assigned_by: str | None
    last_op_type: str | None = Field(description="Apple's last reported change: added, modified or deleted.")
    last_op_date: datetime | None
    enrollment_state: str = Field(description="not_contacted until the device enrolls; removed when Apple drops it.")
    token: str | None = Field(description="Name of the DEP token (MDM server) the device is assigned through.")
    first_seen_at: datetime
    last_synced_at: datetime
    removed_at: datetime | None
    assignment_status: str | None = Field(
        default=None,
        description="Pippin's profile assignment: pending, assigned, failed (retried after 24 hours), throttled, "
        "not_accessible, or null (none asked for).",
    )
    assignment_retry_at: datetime | None = Field(default=None, description="When a waiting assignment is sent again.")
    assignment_error: str | None = Field(default=None, description="Apple's last word on the assignment.")
    can_enroll: bool = Field(default=False, description="False while Apple holds no profile for the device.")


class InventoryPage(BaseModel):
    """A page of the inventory; pass ``next_cursor`` back as ``cursor`` for the next one (null at the end)."""

    devices: list[DeviceRead]
    next_cursor: str | None


class SyncRunRead(BaseModel):
    """One sync of one token: when, what kind, how it ended and what it changed.

    ``warning`` is set when a run succeeded but met something worth knowing (Apple repeating its cursor, a
    cursor that had to be replaced by a full fetch).
    """

    id: int
    token: str
    kind: str = Field(description="full or incremental")
    trigger: str = Field(description="manual, api or scheduled")
    started_at: datetime
    finished_at: datetime | None
    window_ends_at: datetime
    outcome: str = Field(description="running, succeeded, failed or timed_out")
    error_code: str | None
    error_message: str | None
    warning: str | None
    pages: int
    added: int
    modified: int
    removed: int
    unchanged: int
    duration_seconds: float | None


class SyncHealthRead(BaseModel):
    """Where a token's sync stands: the last run, the next ones, and whether one runs now."""

    last_run: SyncRunRead | None
    last_success_at: datetime | None
    last_full_sync_at: datetime | None
    next_full_sync_allowed_at: datetime | None = Field(
        description="Before this, a full sync only adds serials not yet known (null: allowed now)."
    )
    next_sync_at: datetime | None = Field(description="When `pippin serve` runs the next scheduled sync.")
    running: bool
    window_reopens_at: datetime | None = Field(description="While a sync runs, when Sync is possible again.")
    cursor_kind: str | None = Field(description="fetch (a full read in progress), sync, or null (none yet).")
