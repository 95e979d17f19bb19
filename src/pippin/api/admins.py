"""``/api/v1/admins``: console accounts, the REST face of ``pippin.admin.users`` and ``pippin.admin.user_lifecycle``.

Accounts are addressed by their e-mail address (any capitals; percent-encode it in the path). A password reset
answers with the generated password, once: the answer is marked ``Cache-Control: no-store`` and the password is
never logged.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field

from pippin.admin import user_lifecycle as lifecycle_service
from pippin.admin import users as user_service
from pippin.admin.schemas import AdminUserRead, PasswordResetRead
from pippin.api.audit import APIChanger
from pippin.api.deps import AdminRoute
from pippin.api.errors import ErrorRead
from pippin.server.deps import DBSession, Resources
from pippin.store.models import AdminRole

router = APIRouter(prefix="/admins", tags=["admins"], route_class=AdminRoute)

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorRead, "description": "The address, role or password is not valid."},
    404: {"model": ErrorRead, "description": "No admin has this e-mail address."},
}
_LAST_ADMIN: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorRead, "description": "It is the last active admin with the role admin."}
}


class RoleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: AdminRole = Field(description="admin (changes things) or read-only (sees everything, changes nothing).")


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(
        default=None,
        max_length=user_service.MAX_PASSWORD_CHARS,
        description="The new password (at least 12 characters); omit it to have Pippin generate one.",
    )


@router.get("", response_model=list[AdminUserRead])
def list_admins(session: DBSession) -> list[AdminUserRead]:
    """Every console account: role, last sign-in, lock and whether it is disabled."""
    return user_service.list_users(session)


@router.post("/{email}/disable", response_model=AdminUserRead, responses={**_RESPONSES, **_LAST_ADMIN})
def disable_admin(email: str, session: DBSession, actor: APIChanger) -> AdminUserRead:
    """Disable the account: it cannot sign in, and its console sessions end now."""
    return lifecycle_service.disable_user(session, email=email, actor=actor)


@router.post("/{email}/enable", response_model=AdminUserRead, responses=_RESPONSES)
def enable_admin(email: str, session: DBSession, actor: APIChanger) -> AdminUserRead:
    """Let a disabled account sign in again."""
    return lifecycle_service.enable_user(session, email=email, actor=actor)


@router.post("/{email}/unlock", response_model=AdminUserRead, responses=_RESPONSES)
def unlock_admin(email: str, session: DBSession, actor: APIChanger, resources: Resources) -> AdminUserRead:
    """Forget the account's failed sign-ins, from every address, so that it may sign in at once."""
    return lifecycle_service.unlock_user(session, email=email, actor=actor, secret_box=resources.secret_box)


@router.put("/{email}/role", response_model=AdminUserRead, responses={**_RESPONSES, **_LAST_ADMIN})
def set_admin_role(
    email: str, body: Annotated[RoleUpdate, Body()], session: DBSession, actor: APIChanger
) -> AdminUserRead:
    """Give the account a role; it applies from its next request."""
    return lifecycle_service.set_role(session, email=email, role=body.role, actor=actor)


@router.post("/{email}/password", response_model=PasswordResetRead, responses=_RESPONSES)
def reset_admin_password(
    email: str,
    session: DBSession,
    actor: APIChanger,
    response: Response,
    resources: Resources,
    body: Annotated[PasswordReset | None, Body()] = None,
) -> PasswordResetRead:
    """Give the account a new password (generated unless the body has one), unlock it and end its sessions.

    A generated password is in the answer, this once; pass it on to the admin.
    """
    response.headers["Cache-Control"] = "no-store"
    password = body.password if body is not None else None
    return lifecycle_service.reset_password(
        session,
        email=email,
        password=password,
        actor=actor,
        secret_box=resources.secret_box,
        passwords=resources.password_work,
    )
