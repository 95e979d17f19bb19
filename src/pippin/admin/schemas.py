"""Pippin's own shapes for the admin domain, as the REST API returns them and `--json` prints them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class AdminAPITokenRead(BaseModel):
    """An API token as an admin may see it: its name and dates, never the token or its hash."""

    name: str = Field(description="The name given at creation; unique, also after revocation.")
    created_at: datetime
    last_used_at: datetime | None = Field(description="Last authenticated request, updated at most once a minute.")
    revoked_at: datetime | None
    active: bool = Field(description="Whether the token still authenticates (it has not been revoked).")
