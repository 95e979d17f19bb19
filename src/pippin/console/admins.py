"""Admins in the console: the accounts, and what an admin does to one: disable, enable, unlock, change the role,
reset the password.

Every form is a POST with the session's CSRF token, refused for read-only admins (:data:`Changer`), and one call
into ``pippin.admin.user_lifecycle``. A password reset here always generates the password: it is shown once on
the page that answers the form (never in a redirect's notice cookie, never logged), for the admin to pass on, so
no one types a password for someone else into a browser.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from pippin.admin import user_lifecycle as lifecycle_service
from pippin.admin import users as user_service
from pippin.console.auth import Changer, SignedInRoute, Viewer
from pippin.console.rendering import redirect, render
from pippin.errors import InvalidInput, PippinError
from pippin.server.deps import DBSession, Resources
from pippin.store.models import AdminRole

router = APIRouter(route_class=SignedInRoute)


def _list_page(request: Request, db: DBSession, *, error: PippinError | None = None, status: int = 200) -> Response:
    context = {"users": user_service.list_users(db), "roles": list(AdminRole), "error": error}
    return render(request, "admins.html", context, status_code=status)


@router.get("/admins", response_class=HTMLResponse)
def admin_list(request: Request, db: DBSession, signed_in: Viewer) -> Response:
    return _list_page(request, db)


def _done(request: Request, message: str) -> Response:
    return redirect(request, "/console/admins", notice=message)


def _refused(request: Request, db: DBSession, error: PippinError) -> Response:
    """The list again with the refusal (the last admin, an unknown address), nothing changed."""
    db.rollback()
    return _list_page(request, db, error=error, status=409 if error.code == "last_active_admin" else 400)


@router.post("/admins/{email}/disable", response_class=HTMLResponse)
def disable(request: Request, db: DBSession, signed_in: Changer, email: str) -> Response:
    try:
        user = lifecycle_service.disable_user(db, email=email, actor=signed_in.actor)
    except lifecycle_service.LastActiveAdmin as error:
        return _refused(request, db, error)
    return _done(request, f"{user.email} is disabled; their console sessions have ended.")


@router.post("/admins/{email}/enable", response_class=HTMLResponse)
def enable(request: Request, db: DBSession, signed_in: Changer, email: str) -> Response:
    user = lifecycle_service.enable_user(db, email=email, actor=signed_in.actor)
    return _done(request, f"{user.email} is enabled and can sign in again.")


@router.post("/admins/{email}/unlock", response_class=HTMLResponse)
def unlock(request: Request, db: DBSession, signed_in: Changer, resources: Resources, email: str) -> Response:
    user = lifecycle_service.unlock_user(db, email=email, actor=signed_in.actor, secret_box=resources.secret_box)
    return _done(request, f"{user.email} is unlocked and can sign in now.")


@router.post("/admins/{email}/role", response_class=HTMLResponse)
def set_role(
    request: Request,
    db: DBSession,
    signed_in: Changer,
    email: str,
    role: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    try:
        user = lifecycle_service.set_role(db, email=email, role=role, actor=signed_in.actor)
    except (lifecycle_service.LastActiveAdmin, InvalidInput) as error:
        return _refused(request, db, error)
    return _done(request, f"{user.email} is now {user.role}.")


@router.post("/admins/{email}/password", response_class=HTMLResponse)
def reset_password(request: Request, db: DBSession, signed_in: Changer, resources: Resources, email: str) -> Response:
    """Generate a new password and show it on this answer, once; the account is unlocked, its sessions ended."""
    reset = lifecycle_service.reset_password(
        db, email=email, actor=signed_in.actor, secret_box=resources.secret_box, passwords=resources.password_work
    )
    return render(request, "admin_password.html", {"reset": reset})
