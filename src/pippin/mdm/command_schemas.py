"""Pippin's shapes for admins' commands: what REST takes and returns and ``--json`` prints, with the same keys.

Apple's wire shapes (the Command dict, the device's answer) stay with the queue and the catalog; these describe
a command as an admin asks for it (a request type and typed parameters) and sees it afterwards.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from pippin.inventory.schemas import DeviceFilters
from pippin.inventory.state import DeviceState
from pippin.store.models import ApprovalStatus, CommandStatus
from pippin.text import Line

#: Apple's request types are words of letters and digits (``DeviceInformation``, ``EraseDevice``).
RequestType = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9]{0,63}$")]
#: The most devices one bulk request may name by serial number; a filter names any number.
MAX_BULK_SERIALS = 100_000
Serial = Annotated[Line, Field(min_length=1, max_length=64)]


class CommandCreate(BaseModel):
    """A command for one device: Apple's request type and its parameters, by Apple's key names."""

    model_config = ConfigDict(extra="forbid")

    request_type: RequestType = Field(description="Apple's RequestType, e.g. DeviceInformation or DeviceLock.")
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description='The command\'s parameters by Apple\'s key names (e.g. {"Message": "..."} for DeviceLock).',
    )
    expires_in: timedelta | None = Field(
        default=None,
        description="How long the command waits for the device (ISO 8601, e.g. PT1H, or seconds; at most 365 days); "
        "PIPPIN_COMMAND_EXPIRATION when absent. A lock or a location is worth little a week later.",
    )


class BulkCommandCreate(CommandCreate):
    """A command for many devices: named by serial number, or chosen by the device list's filters."""

    serials: list[Serial] | None = Field(default=None, max_length=MAX_BULK_SERIALS, min_length=1)
    state: DeviceState | None = Field(default=None, description="Only devices in this state.")
    token: Line | None = Field(default=None, max_length=64, description="Only devices of this DEP token.")
    profile: Line | None = Field(default=None, max_length=125, description="Only devices given this profile.")
    search: Line | None = Field(default=None, max_length=128, description="Serial, model, asset tag, description.")
    bulk_id: UUID | None = Field(
        default=None,
        description="A UUID of the client's choosing: the same request sent again with it (after a timeout, or a "
        "send that stopped) queues only the devices it has not queued yet.",
    )

    @model_validator(mode="after")
    def _serials_or_filters(self) -> BulkCommandCreate:
        filtered = any(value is not None for value in (self.state, self.token, self.profile, self.search))
        if (self.serials is not None) == filtered:
            raise PydanticCustomError(
                "contradictory_fields",
                "Give either serials or at least one filter (state, token, profile, search), not {said}",
                {"said": "both" if filtered else "neither"},
            )
        return self

    def filters(self) -> DeviceFilters | None:
        if self.serials is not None:
            return None
        return DeviceFilters(state=self.state, token=self.token, profile=self.profile, search=self.search)


class CommandQueued(BaseModel):
    """A command queued for one device; it is sent when the device next connects (a push wakes it)."""

    command_uuid: str
    request_type: str
    status: CommandStatus
    serial_number: str
    udid: str


class CommandRead(BaseModel):
    """One command of a device, from queued to its end, with the device's answer."""

    command_uuid: str
    request_type: str
    status: CommandStatus = Field(
        description="queued, sent (fetched, no answer yet), acknowledged, error, not_now (the device will fetch it "
        "again), expired or canceled."
    )
    created_at: datetime
    sent_at: datetime | None
    answered_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime = Field(description="When it ends expired if the device has not answered it by then.")
    error_chain: list[dict[str, Any]] | None = Field(description="The device's ErrorChain, for status error.")
    response: dict[str, Any] | None = Field(description="The device's answer, parsed, with its secrets removed.")


class CommandApprovalRead(BaseModel):
    """A bulk erase asked for by one admin, waiting for (or given) another admin's approval."""

    id: int
    request_type: str
    selection: str = Field(description="How the devices were chosen.")
    devices: int = Field(description="How many enrolled devices it erases (fixed when it was asked for).")
    status: ApprovalStatus
    requested_by: str
    requested_via: str
    requested_at: datetime
    expires_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    queued: int = Field(description="Devices whose command is queued so far.")
    finished_at: datetime | None


class BulkCommandQueued(BaseModel):
    """What a bulk request did: the commands queued, or the approval request it made (a bulk erase)."""

    devices: int = Field(description="Devices whose command is queued, or would be once approved.")
    already_queued: int = Field(default=0, description="Devices an earlier run of the same bulk_id queued for.")
    not_enrolled: int = Field(description="Devices the filter matched that are not enrolled: left out.")
    not_applicable: int = Field(
        default=0, description="Enrolled devices the command does not apply to (not supervised, too old): left out."
    )
    reasons: list[str] = Field(default_factory=list, description="Why devices were left out, most common first.")
    bulk_id: str | None = Field(
        description="Shared by the commands queued; give it again to finish a send that stopped. Null while an "
        "approval is pending."
    )
    approval: CommandApprovalRead | None = Field(
        default=None, description="For a bulk erase: the request a second admin must approve."
    )
