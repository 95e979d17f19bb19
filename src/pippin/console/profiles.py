"""Enrollment profiles in the console: the list, one profile with its devices and problems, create and edit.

The form holds every field of the profile; the Setup Assistant panes are a list of show/hide switches
(Apple's skip_setup_items are the panes switched off). Apple's rules are checked by the profile service.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from pippin.console.auth import Changer, SignedInRoute, Viewer
from pippin.console.rendering import redirect, render
from pippin.dep import assignment as assignment_service
from pippin.dep import profiles as profile_service
from pippin.dep import token as token_service
from pippin.dep.profile_schemas import ProfileCreate, ProfileRead, ProfileUpdate
from pippin.dep.setup_panes import PANES
from pippin.errors import InvalidInput, PippinError
from pippin.server.background import send_due_assignments_after_response
from pippin.server.deps import DBSession, Resources
from pippin.store.models import DEPProfile, Device, UserAffinity
from pippin.text import check_text

router = APIRouter(route_class=SignedInRoute)
_FLAGS = ("supervised", "locked", "mandatory", "allow_pairing", "await_device_configured", "auto_advance_setup")
_TEXTS = (
    "description",
    "department",
    "support_phone",
    "support_email",
    "org_magic",
    "language",
    "region",
    "minimum_os_version",
)
_MAX_FIELD_CHARS = 10_000
#: Serial numbers one form may name; more go through a token, "every device without a profile", or the CLI.
MAX_SERIALS = 10_000
_MAX_SERIALS_CHARS = 200_000
_MAX_SERIALS_SHOWN = 20_000
_SERIAL = re.compile(r"[A-Za-z0-9]{1,64}")
_PANE_KEYS = frozenset(pane.key for pane in PANES)


def _switch(value: object, name: str) -> bool:
    """A checkbox: ticked, it sends "true" (the value the form gives it); unticked, nothing. Anything else is not
    from the form, and is refused rather than read as unticked."""
    if value is None:
        return False
    if value == "true":
        return True
    raise InvalidInput(
        f"The switch {name} was sent as something other than ticked (true) or left out; nothing was changed.",
        hint="Reload the page and tick or untick it.",
    )


async def _profile_fields(request: Request) -> dict[str, Any]:
    """The profile's fields from the posted form: unchecked switches are false, empty texts are unset."""
    form = await request.form()
    values: dict[str, Any] = {}
    for key in ("name", *_TEXTS, "user_affinity"):
        raw = form.get(key)
        # Not trimmed here: the schema and the service check the text as typed (a trailing line separator is
        # refused, not dropped unseen), then the service trims the spaces.
        text = raw if isinstance(raw, str) else ""
        if len(text) > _MAX_FIELD_CHARS:
            raise InvalidInput(f"The field {key} is longer than {_MAX_FIELD_CHARS:,} characters.", hint="Shorten it.")
        values[key] = text if text.strip() else None
    for flag in _FLAGS:
        values[flag] = _switch(form.get(flag), flag)
    shown = {str(value) for value in form.getlist("show_pane")}
    unknown = sorted(shown - _PANE_KEYS)
    if unknown:
        raise InvalidInput(
            f"The field show_pane names {len(unknown)} Setup Assistant pane(s) this form does not offer, such as "
            f"{unknown[0][:40]!r}; nothing was changed.",
            hint="Reload the page and tick the panes to show.",
        )
    values["skip_setup_items"] = [pane.key for pane in PANES if pane.key not in shown]
    certificates = form.get("anchor_certs")
    text = certificates.strip() if isinstance(certificates, str) else ""
    values["anchor_certs"] = [text] if text else []
    values["user_affinity"] = values["user_affinity"] or UserAffinity.none
    return values


def _page_of(name: str) -> str:
    """The profile's page: the name quoted whole, so '%', '&', spaces and any script reach the route unchanged."""
    return f"/console/profiles/{quote(name, safe='')}"


def _invalid(error: ValidationError) -> InvalidInput:
    problems = {
        str(item["loc"][0])[:40]: str(item.get("msg", "")).removeprefix("Value error, ")[:200]
        for item in error.errors()[:10]
        if item.get("loc")
    }
    listed = "; ".join(f"{field}: {problem}" for field, problem in sorted(problems.items()))
    return InvalidInput(f"These fields are not valid: {listed}.", hint="Correct them and save again.")


def _form_page(
    request: Request, *, profile: dict[str, Any], editing: str | None, error: PippinError | None, status: int = 200
) -> Response:
    shown = {pane.key for pane in PANES} - set(profile.get("skip_setup_items") or [])
    return render(
        request,
        "profile_form.html",
        {
            "profile": profile,
            "editing": editing,
            "error": error,
            "panes": PANES,
            "shown": shown,
            "affinities": list(UserAffinity),
        },
        status_code=status,
    )


@router.get("/profiles", response_class=HTMLResponse)
def profile_list(request: Request, db: DBSession, signed_in: Viewer, resources: Resources) -> Response:
    profiles = profile_service.list_profiles(db, settings=resources.settings)
    return render(request, "profiles.html", {"profiles": profiles})


@router.get("/profiles/new", response_class=HTMLResponse)
def new_profile(request: Request, signed_in: Viewer) -> Response:
    return _form_page(request, profile={"allow_pairing": True, "skip_setup_items": []}, editing=None, error=None)


@router.post("/profiles/new", response_class=HTMLResponse)
async def create_profile(request: Request, db: DBSession, signed_in: Changer, resources: Resources) -> Response:
    values = await _profile_fields(request)
    try:
        try:
            data = ProfileCreate.model_validate(values)
        except ValidationError as invalid:
            raise _invalid(invalid) from None
        created = profile_service.create_profile(db, data=data, settings=resources.settings, actor=signed_in.actor)
    except PippinError as error:
        db.rollback()
        return _form_page(request, profile=values, editing=None, error=error, status=400)
    return redirect(request, _page_of(created.name), notice=f"Profile {created.name} is saved.")


def _problems(db: DBSession, profile: ProfileRead) -> list[Device]:
    return list(
        db.scalars(
            select(Device)
            .join(DEPProfile, DEPProfile.id == Device.assigned_profile_id)
            .where(DEPProfile.name == profile.name)
            .where(Device.assignment_status.in_(("failed", "throttled", "not_accessible")))
            .order_by(Device.serial_number)
            .limit(100)
        )
    )


def _detail_page(
    request: Request,
    db: DBSession,
    resources: Resources,
    name: str,
    *,
    error: PippinError | None = None,
    serials: str = "",
) -> Response:
    profile = profile_service.read_profile(db, name=name, settings=resources.settings)
    return render(
        request,
        "profile.html",
        {
            "profile": profile,
            "problems": _problems(db, profile),
            "tokens": [token.name for token in token_service.list_tokens(db)],
            "error": error,
            "serials": serials[:_MAX_SERIALS_SHOWN],
        },
        status_code=200 if error is None else 400,
    )


@router.get("/profiles/{name}", response_class=HTMLResponse)
def profile_detail(request: Request, db: DBSession, signed_in: Viewer, resources: Resources, name: str) -> Response:
    return _detail_page(request, db, resources, name)


def _parse_serials(text: str) -> list[str]:
    """Serial numbers separated by spaces, commas or new lines, as pasted from a spreadsheet or Apple's portal.

    The text is checked first: a line or paragraph separator, or a C1 control, would otherwise split it as
    whitespace without a word."""
    check_text(text, field="The serial numbers", multiline=True)
    serials = [item for item in re.split(r"[\s,;]+", text) if item]
    if len(serials) > MAX_SERIALS:
        raise InvalidInput(
            f"{len(serials):,} serial numbers is more than {MAX_SERIALS:,} at once.",
            hint="Assign a token's devices or every device without a profile instead, or use `pippin profiles assign`.",
        )
    bad = [serial for serial in serials if not _SERIAL.fullmatch(serial)]
    if bad:
        raise InvalidInput(
            f"{len(bad)} entries are not serial numbers (letters and digits, at most 64).",
            hint="Paste only serial numbers, one per line.",
        )
    return serials


@router.post("/profiles/{name}/assign", response_class=HTMLResponse)
def assign_devices(
    request: Request,
    db: DBSession,
    signed_in: Changer,
    resources: Resources,
    background: BackgroundTasks,
    name: str,
    which: Annotated[str, Form(max_length=32)] = "",
    serials: Annotated[str, Form(max_length=_MAX_SERIALS_CHARS)] = "",
    token: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Queue devices for the profile (serials, every device without one, or a token's), then send them to Apple."""
    profile_service.get_profile(db, name=name)
    try:
        if which not in ("serials", "unassigned", "token"):
            raise InvalidInput("Choose which devices to assign.", hint="Pick one of the three choices.")
        chosen = _parse_serials(serials) if which == "serials" else []
        if which == "serials" and not chosen:
            raise InvalidInput("Enter at least one serial number.", hint="Paste them one per line.")
        if which == "token" and not token:
            raise InvalidInput("Choose the DEP token whose devices get this profile.")
        queued = assignment_service.queue_assignment(
            db,
            profile_name=name,
            serials=chosen,
            all_unassigned=which == "unassigned",
            token_name=token if which == "token" else None,
            actor=signed_in.actor,
        )
    except PippinError as error:
        db.rollback()
        return _detail_page(request, db, resources, name, error=error, serials=serials)
    send_due_assignments_after_response(background, resources)
    notice = (
        f"{queued.queued} devices are queued for {queued.profile} and being sent to Apple; "
        f"{queued.unchanged} already had it."
    )
    return redirect(request, f"{_page_of(name)}#assign", notice=notice)


@router.get("/profiles/{name}/edit", response_class=HTMLResponse)
def edit_profile(request: Request, db: DBSession, signed_in: Viewer, resources: Resources, name: str) -> Response:
    profile = profile_service.read_profile(db, name=name, settings=resources.settings)
    values = profile.model_dump()
    values["anchor_certs"] = []
    return _form_page(request, profile=values, editing=name, error=None)


@router.post("/profiles/{name}/edit", response_class=HTMLResponse)
async def update_profile(
    request: Request, db: DBSession, signed_in: Changer, resources: Resources, background: BackgroundTasks, name: str
) -> Response:
    """Save the profile; devices queued for a new revision are sent to Apple once the change is committed."""
    values = await _profile_fields(request)
    changes = dict(values)
    if not changes["anchor_certs"]:
        changes.pop("anchor_certs")  # an empty box keeps the certificates the profile has
    try:
        try:
            update = ProfileUpdate.model_validate(changes)
        except ValidationError as invalid:
            raise _invalid(invalid) from None
        updated = profile_service.update_profile(
            db, name=name, changes=update, settings=resources.settings, actor=signed_in.actor
        )
    except PippinError as error:
        db.rollback()
        return _form_page(request, profile=values, editing=name, error=error, status=400)
    send_due_assignments_after_response(background, resources)
    return redirect(request, _page_of(updated.name), notice=f"Profile {updated.name} is saved.")
