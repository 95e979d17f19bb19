"""DEP tokens in the console: the list, adding one in the seed's order, its detail page, Sync now, and deleting one
after a page that says what goes with it.

Adding follows the seed: name it and download the encryption key (.pem), do the written-out steps at
Apple, then upload the server token (.p7m) with the Apple ID. Renewal is the same path for an existing name.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from pippin.console.auth import Changer, SignedInRoute, Viewer
from pippin.console.rendering import redirect, render
from pippin.dep import profiles as profile_service
from pippin.dep import sync as sync_service
from pippin.dep import sync_runs as sync_run_service
from pippin.dep import token as token_service
from pippin.dep import token_deletion as token_deletion_service
from pippin.dep.errors import DEPError
from pippin.errors import InvalidInput, NotFound, PippinError
from pippin.server.background import run_sync_after_response
from pippin.server.deps import DBSession, Resources
from pippin.store.models import DEPProfile, TokenDefaultProfile

router = APIRouter(route_class=SignedInRoute)
_P7M_SUFFIXES = (".p7m",)


@router.get("/tokens", response_class=HTMLResponse)
def token_list(request: Request, db: DBSession, signed_in: Viewer, resources: Resources) -> Response:
    tokens = sync_run_service.with_sync_health(db, tokens=token_service.list_tokens(db), settings=resources.settings)
    return render(request, "tokens.html", {"tokens": tokens})


@router.get("/tokens/new", response_class=HTMLResponse)
def new_token_form(request: Request, signed_in: Viewer) -> Response:
    return render(request, "token_new.html", {"name": "", "error": None})


@router.post("/tokens/new", response_class=HTMLResponse)
def create_keypair(
    request: Request,
    db: DBSession,
    signed_in: Changer,
    resources: Resources,
    name: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Step 2 of the seed: make the key pair, then show the steps with the .pem to download."""
    try:
        token_service.create_keypair(
            db,
            name=name.strip(" "),
            box=resources.secret_box,
            actor=signed_in.actor,
            generate_key=resources.generate_key,
        )
    except PippinError as error:
        db.rollback()
        return render(request, "token_new.html", {"name": name, "error": error}, status_code=400)
    return redirect(request, f"/console/tokens/{name.strip(' ')}/connect")


@router.post("/tokens/{name}/keypair")
def renew_keypair(request: Request, db: DBSession, signed_in: Changer, resources: Resources, name: str) -> Response:
    """Renewal starts with a new key pair; the current token keeps working until the new one is uploaded."""
    token_service.get_token(db, name=name)
    token_service.create_keypair(
        db, name=name, box=resources.secret_box, actor=signed_in.actor, generate_key=resources.generate_key
    )
    return redirect(request, f"/console/tokens/{name}/connect")


@router.get("/tokens/{name}/public-key.pem")
def download_public_key(db: DBSession, signed_in: Viewer, name: str) -> Response:
    """The pending certificate, for upload to Apple; reading it changes nothing."""
    token = token_service.get_token(db, name=name)
    if not token.pending_certificate_pem:
        raise NotFound(
            f"DEP token {name!r} has no encryption key waiting for Apple.",
            hint="Start with 'Add a DEP token' (or 'Renew' on the token's page) to make one.",
        )
    return Response(
        token.pending_certificate_pem,
        media_type="application/x-pem-file",
        headers={"Content-Disposition": f'attachment; filename="pippin-dep-{token.name}.pem"'},
    )


def _connect_page(request: Request, db: DBSession, name: str, *, error: PippinError | None = None) -> Response:
    token = token_service.read_token(db, name=name)
    status = 200 if error is None else (502 if isinstance(error, DEPError) else 400)
    return render(request, "token_connect.html", {"token": token, "error": error}, status_code=status)


@router.get("/tokens/{name}/connect", response_class=HTMLResponse)
def connect_steps(request: Request, db: DBSession, signed_in: Viewer, name: str) -> Response:
    return _connect_page(request, db, name)


@router.post("/tokens/{name}/upload", response_class=HTMLResponse)
def upload_token(
    request: Request,
    db: DBSession,
    signed_in: Changer,
    resources: Resources,
    name: str,
    token: Annotated[UploadFile | None, File()] = None,
    apple_id: Annotated[str, Form(max_length=320)] = "",
    force: Annotated[bool, Form()] = False,
) -> Response:
    """Step 4 of the seed: the .p7m and the Apple ID; refused whole (nothing stored) on any problem."""
    token_service.get_token(db, name=name)
    db.commit()  # end the request's transaction (sign-in): none stays open while Apple answers

    try:
        p7m = _read_token_file(token)
        result = token_service.upload_token(
            resources.session_factory,
            name=name,
            p7m=p7m,
            apple_id=apple_id,  # trimmed by the service, after its check of the text as typed
            box=resources.secret_box,
            settings=resources.settings,
            force=force,
            actor=signed_in.actor,
        )
    except PippinError as error:
        return _connect_page(request, db, name, error=error)
    notice = f"DEP token {name} is connected to {result.token.server_name or 'its MDM server'}."
    if result.warnings:
        notice += " " + " ".join(result.warnings)
    return redirect(request, f"/console/tokens/{name}", notice=notice)


def _read_token_file(upload: UploadFile | None) -> bytes:
    if upload is None or not upload.filename:
        raise InvalidInput("Choose the server token file to upload.", hint="It is the *_smime.p7m file from Apple.")
    limit = token_service.MAX_TOKEN_FILE_BYTES
    data = upload.file.read(limit + 1)
    if not upload.filename.lower().endswith(_P7M_SUFFIXES):
        raise InvalidInput(
            f"{upload.filename[:80]!r} is not a server token: Apple's token files end in .p7m.",
            hint="Upload the *_smime.p7m file downloaded from Apple Business Manager, not the .pem.",
        )
    if len(data) > limit:
        raise InvalidInput(
            f"The file is larger than {limit:,} bytes; a DEP server token is a few kilobytes.",
            hint="Upload the *_smime.p7m file downloaded from Apple Business Manager.",
        )
    return data


def _detail_page(
    request: Request,
    db: DBSession,
    resources: Resources,
    name: str,
    *,
    error: PippinError | None = None,
    default_error: PippinError | None = None,
) -> Response:
    token = token_service.read_token(db, name=name)
    token = sync_run_service.with_sync_health(db, tokens=[token], settings=resources.settings)[0]
    runs = sync_run_service.list_sync_runs(db, token_name=name, limit=20)
    stored = token_service.get_token(db, name=name)
    return render(
        request,
        "token.html",
        {
            "token": token,
            "runs": runs,
            "error": error,
            "default_error": default_error,
            "default_profile": _default_profile(db, stored.id),
            "profiles": list(db.scalars(select(DEPProfile.name).order_by(DEPProfile.name))),
            "full_interval_days": resources.settings.dep_full_sync_interval.days,
            "window_minutes": int(resources.settings.dep_sync_window.total_seconds() // 60),
        },
        status_code=409 if error is not None else 400 if default_error is not None else 200,
    )


def _default_profile(db: DBSession, token_id: int) -> str | None:
    return db.scalars(
        select(DEPProfile.name)
        .join(TokenDefaultProfile, TokenDefaultProfile.profile_id == DEPProfile.id)
        .where(TokenDefaultProfile.token_id == token_id)
    ).first()


@router.post("/tokens/{name}/default-profile", response_class=HTMLResponse)
def set_default_profile(
    request: Request,
    db: DBSession,
    signed_in: Changer,
    resources: Resources,
    name: str,
    profile: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The profile this token's newly synced devices get (and those without one, at the next sync); empty: none."""
    token_service.get_token(db, name=name)
    try:
        profile_service.set_default_profile(db, token_name=name, profile_name=profile or None, actor=signed_in.actor)
    except PippinError as error:
        db.rollback()
        return _detail_page(request, db, resources, name, default_error=error)
    notice = f"New devices of {name} get profile {profile}." if profile else f"New devices of {name} get no profile."
    return redirect(request, f"/console/tokens/{name}", notice=notice)


@router.get("/tokens/{name}", response_class=HTMLResponse)
def token_detail(request: Request, db: DBSession, signed_in: Viewer, resources: Resources, name: str) -> Response:
    return _detail_page(request, db, resources, name)


@router.post("/tokens/{name}/sync", response_class=HTMLResponse)
def sync_now(
    request: Request,
    db: DBSession,
    signed_in: Changer,
    resources: Resources,
    background: BackgroundTasks,
    name: str,
    full: Annotated[bool, Form()] = False,
) -> Response:
    """Sync now: claims the token's window (refused while it is open) and runs after the answer is sent."""
    try:
        started = sync_service.start_sync(
            db, token_name=name, settings=resources.settings, full=full, trigger="manual", actor=signed_in.actor
        )
    except sync_run_service.SyncWindowClosed as error:
        db.rollback()
        return _detail_page(request, db, resources, name, error=error)
    run_sync_after_response(background, resources, run_id=started.id)
    kind = "A full sync" if started.kind == "full" else "A sync"
    return redirect(request, f"/console/tokens/{name}", notice=f"{kind} of {name} has started.")


@router.get("/tokens/{name}/delete", response_class=HTMLResponse)
def delete_confirmation(request: Request, db: DBSession, signed_in: Viewer, name: str) -> Response:
    """What deleting the token removes, counted, and the button that does it; looking changes nothing."""
    found = token_deletion_service.preview_token_deletion(db, name=name)
    return render(request, "token_delete.html", {"found": found, "error": None})


@router.post("/tokens/{name}/delete", response_class=HTMLResponse)
def delete_token(request: Request, db: DBSession, signed_in: Changer, name: str) -> Response:
    """Delete the token and what is only its, in this request's one transaction."""
    try:
        removed = token_deletion_service.delete_token(db, name=name, actor=signed_in.actor)
    except sync_run_service.SyncWindowClosed as error:
        db.rollback()
        found = token_deletion_service.preview_token_deletion(db, name=name)
        return render(request, "token_delete.html", {"found": found, "error": error}, status_code=409)
    notice = (
        f"DEP token {removed.token} is deleted, with {removed.devices} device records and {removed.sync_runs} "
        f"sync runs; {removed.enrollments_unlinked} enrollments are kept. Nothing was sent to Apple."
    )
    return redirect(request, "/console/tokens", notice=notice)
