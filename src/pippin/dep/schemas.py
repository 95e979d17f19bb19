"""Pippin's own shapes for DEP tokens: what the REST API returns and `pippin dep tokens --json` prints."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from pippin.dep.sync_schemas import SyncHealthRead
from pippin.store.models import TokenStatus


class ExpiryLevel(StrEnum):
    """How urgent the yearly renewal is (reference 1.4: peers warn at 30 and 7 days)."""

    ok = "ok"
    warning = "warning"  # under 30 days left
    alarm = "alarm"  # under 7 days left
    expired = "expired"


class DEPTokenRead(BaseModel):
    """One DEP token as an administrator sees it; never any key or credential."""

    name: str
    server_uuid: str | None = Field(description="Apple's MDM server this token belongs to.")
    server_name: str | None
    org_name: str | None
    apple_id: str | None = Field(description="The Apple ID the administrator said created the token.")
    admin_id: str | None = Field(description="The Apple ID Apple says created the current token.")
    expires_at: datetime | None
    days_left: int | None = Field(description="Whole days until expiry; negative once expired.")
    expiry_level: ExpiryLevel | None = Field(description="None until a token is uploaded.")
    status: TokenStatus = Field(description="Whether Pippin can talk to Apple with the token, and if not, why.")
    last_error: str | None = Field(description="What went wrong last and what to do about it.")
    last_error_at: datetime | None
    uploaded_at: datetime | None
    has_pending_keypair: bool = Field(
        description="A key pair was made and waits for a token encrypted to it; the current one still works."
    )
    sync: SyncHealthRead | None = Field(
        default=None, description="Where the token's device sync stands: last run, next runs, running now."
    )


class TokenUploadResult(BaseModel):
    """The stored token and anything the administrator should know about it (e.g. a differing Apple ID)."""

    token: DEPTokenRead
    warnings: list[str] = Field(default_factory=list)


#: Said with every deletion, before and after: deleting in Pippin tells Apple nothing.
APPLE_KEEPS_DEVICES = (
    "Nothing is sent to Apple: the devices stay assigned to this MDM server at Apple until they are released "
    "or moved to another server in Apple Business Manager, and the token stays valid there until it expires."
)


class TokenDeletionRead(BaseModel):
    """What deleting a DEP token removes from Pippin (``deleted`` false: what it would remove, if confirmed)."""

    token: str
    server_name: str | None = Field(description="The Apple MDM server the token belongs to.")
    server_uuid: str | None
    deleted: bool = Field(description="Whether this is what was deleted (true) or a preview of it (false).")
    devices: int = Field(description="The token's device records (Apple's side), deleted with it.")
    sync_runs: int = Field(description="The token's sync history, deleted with it.")
    profile_definitions: int = Field(
        description="Definitions of enrollment profiles at Apple under this token (the profiles themselves stay)."
    )
    default_profile: str | None = Field(description="The token's default profile; the profile itself stays.")
    pending_assignments: int = Field(
        description="Devices whose profile assignment was queued or waiting to be retried; never sent now."
    )
    enrollments_unlinked: int = Field(
        description="Enrollments of those devices: kept, with their UDID and serial, but no longer linked to a DEP "
        "record (the device stays managed)."
    )
    apple: str = Field(default=APPLE_KEEPS_DEVICES, description="What happens at Apple: nothing.")
