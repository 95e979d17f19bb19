"""Pippin's shapes for releasing devices from Setup Assistant: the enrollment-time commands of a profile, and the
problem a device shows while it waits too long (or after a step failed).

What REST returns and ``--json`` prints, with the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from pippin.store.models import SetupCommandKind
from pippin.text import Line


class SetupCommandRead(BaseModel):
    """One enrollment-time command of a profile; ``position`` is its place in the order they are sent."""

    id: int = Field(description="The command's id: what `remove` takes.")
    position: int = Field(description="1 for the first command sent, and so on.")
    kind: SetupCommandKind
    request_type: str = Field(description="The MDM command sent: InstallProfile or Settings.")
    label: str = Field(description="The profile's display name or identifier, or the device name template.")
    name_template: str | None = Field(description="The device name template (device_name only).")
    created_at: datetime
    created_by: str | None


class SetupCommandCreate(BaseModel):
    """One enrollment-time command: a configuration profile (base64 of the .mobileconfig) or a name template."""

    model_config = ConfigDict(extra="forbid")

    kind: SetupCommandKind
    payload: str | None = Field(
        default=None,
        max_length=2 * 1024 * 1024,
        description="install_profile: the .mobileconfig (XML or signed), base64. Kept sealed, never shown again.",
    )
    template: Line | None = Field(
        default=None, max_length=255, description="device_name: e.g. `iPad-{serial}`; see the placeholders."
    )


class SetupProblemKind(StrEnum):
    #: Still waiting in Setup Assistant longer than ``PIPPIN_SETUP_STUCK_AFTER``.
    stuck = "stuck"
    #: A step (or DeviceConfigured) failed; the device was released anyway when it could be.
    failed = "failed"


class SetupProblemRead(BaseModel):
    """Why a device's release from Setup Assistant needs an admin's eye."""

    kind: SetupProblemKind
    reason: str = Field(description="What the device waits on, or what failed, in words.")
    awaiting_since: datetime | None = Field(description="When the device's wait in Setup Assistant began.")


@dataclass(frozen=True)
class SetupWatch:
    """What the device views need to say whether a device is stuck: the time now and the setting."""

    now: datetime
    stuck_after: timedelta
