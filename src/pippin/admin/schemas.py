"""Pippin's own shapes for the admin domain, as the REST API returns them and `--json` prints them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from pippin.admin.actor import AuditAction, Interface
from pippin.store.models import AdminRole, APITokenScope


class AdminAPITokenRead(BaseModel):
    """An API token as an admin may see it: its name and dates, never the token or its hash."""

    name: str = Field(description="The name given at creation; unique, also after revocation.")
    scope: APITokenScope = Field(description="read-only (GET and HEAD only) or read-write; chosen at creation.")
    created_at: datetime
    last_used_at: datetime | None = Field(description="Last authenticated request, updated at most once a minute.")
    revoked_at: datetime | None
    active: bool = Field(description="Whether the token still authenticates (it has not been revoked).")


class AdminUserRead(BaseModel):
    """An admin account as others may see it: never the password or its hash."""

    email: str
    role: AdminRole = Field(description="admin (may change things) or read-only (sees everything, changes nothing).")
    created_at: datetime
    last_sign_in_at: datetime | None
    disabled_at: datetime | None = Field(
        default=None, description="When the account was disabled (it cannot sign in); null when it is active."
    )


class PasswordResetRead(BaseModel):
    """The admin whose password was reset and, when Pippin generated it, the new password: shown this once."""

    admin: AdminUserRead
    password: str | None = Field(
        description="The generated password, to pass on to the admin; null when the new password was given."
    )


class AuditEventRead(BaseModel):
    """One change an admin made: who, what, when, from where (`pippin audit list --json`)."""

    id: int
    at: datetime
    actor: str = Field(description="The admin's e-mail, the API token's name, or the operating-system user.")
    interface: Interface = Field(description="Where the change came from.")
    action: AuditAction = Field(description="What was done, e.g. dep.token.upload or admin.user.create.")
    target: str | None = Field(description="What it was done to, e.g. the token's name or a serial number.")
    source: str | None = Field(description="The client address, or the host for the CLI.")
    detail: dict[str, Any] = Field(description="A few non-secret facts about the change.")
