"""The enrollment sign-in page (user affinity) as a sub-app of its own, mounted at ``/enroll/web`` by the server.

Setup Assistant opens ``GET /enroll/web/{reference}`` in a web view with the device's signed MachineInfo in the
``x-apple-aspen-deviceinfo`` header; the page asks an organisation user to sign in and posts back to the same
address, carrying its single-use state in a hidden field (web views lose cookies); a good sign-in is answered
with the enrollment profile (``application/x-apple-aspen-config``), which ends the web view and installs it.
The use cases are ``mdm/web_enrollment.py``'s; here HTTP becomes their arguments and their errors become pages.

A person reads these pages, on a phone, in the middle of setup: plain, accessible HTML in the console's style
(its stylesheet, no script), every refusal saying what to do next, and never 401 (the device may be mid-way
through enrollment). One refusal is for the device, not the person: a device that must update to the profile's
minimum OS version first gets Apple's 403 ``com.apple.softwareupdate.required`` plist (``device/refusals.py``),
which Setup Assistant acts on itself. The form is small and read whole before anything is checked; a body over
:data:`MAX_REQUEST_BYTES` is refused unread.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from pippin.admin.actor import ANONYMOUS, Actor, Interface
from pippin.admin.directory import MAX_USERNAME_CHARS, DirectoryUserDisabled, sign_in_failed
from pippin.admin.passwords import PasswordWorkBusy
from pippin.admin.users import MAX_PASSWORD_CHARS, SignInFailed, SignInThrottled
from pippin.device.refusals import software_update_required
from pippin.errors import ConfigurationError, InvalidInput, PippinError
from pippin.mdm import enrollment_web_states as states
from pippin.mdm import web_enrollment
from pippin.mdm.ade_enrollment import SoftwareUpdateRequired
from pippin.mdm.enrollment_profile import PROFILE_MEDIA_TYPE
from pippin.mdm.enrollment_web_states import StateRefused
from pippin.mdm.machine_info import MachineInfo, read_device_info_header
from pippin.mdm.trust_anchors import load_device_trust_anchors
from pippin.server.errors import for_operator_only, status_for
from pippin.server.middleware import BodySizeLimit, UnexpectedErrorMiddleware
from pippin.server.proxies import client_address
from pippin.server.resources import ServerResources
from pippin.store.db import read_transaction, transaction

logger = logging.getLogger("pippin.device.enrollment_web")

#: The sign-in form: a state, a username and a password, with room to spare; nothing larger is read.
MAX_REQUEST_BYTES = 8 * 1024
DEVICE_INFO_HEADER = "x-apple-aspen-deviceinfo"
_FIELDS = frozenset({"state", "username", "password"})
_RESTART = "Restart setup on the device to get a new sign-in page."

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _page(
    request: Request | None, scope: Scope | None, template: str, context: dict[str, Any], status: int
) -> Response:
    page = {"title": "Sign in", **context}
    response = templates.TemplateResponse(
        request or Request(scope or {"type": "http"}), template, page, status_code=status
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(request: Request, *, status: int, title: str, message: str, hint: str | None) -> Response:
    context = {"title": title, "message": message, "hint": hint}
    return _page(request, None, "enrollment_refused.html", context, status)


def _error_page(request: Request, error: PippinError) -> Response:
    status = 403 if isinstance(error, web_enrollment.DeviceNotManaged) else status_for(error)
    if status >= 500 or isinstance(error, ConfigurationError):
        logger.error("enrollment page failed: %s", error, extra={"fields": {"error": error.code}})
        hidden = for_operator_only(error)
        message = hidden.message if hidden else error.message
        return _refused(
            request,
            status=503 if isinstance(error, ConfigurationError) else status,
            title="Setup cannot continue right now",
            message=message,
            hint="Try again in a while; if it keeps failing, tell your IT department.",
        )
    title = "Setup must start again" if isinstance(error, StateRefused) else "Setup cannot continue"
    response = _refused(request, status=status, title=title, message=error.message, hint=error.hint)
    if isinstance(error, SignInThrottled):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _device_info(request: Request, resources: ServerResources, *, required: bool) -> MachineInfo | None:
    value = request.headers.get(DEVICE_INFO_HEADER)
    if value is None:
        if not required:
            return None
        raise InvalidInput(
            "This page opens only on a device, during setup: the device did not say which one it is.",
            hint="Switch the device on (or erase it) and follow setup until it asks you to sign in.",
        )
    anchors = load_device_trust_anchors(resources.settings)
    return read_device_info_header(value, anchors=anchors)


async def _read_form(request: Request) -> dict[str, str]:
    """The sign-in form's fields, each once, as UTF-8 text; :class:`InvalidInput` for anything else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidInput("The sign-in was not sent as a form.", hint=_RESTART)
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("The sign-in form holds something that is not text.", hint=_RESTART) from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name not in _FIELDS or name in form:
            raise InvalidInput("The sign-in form is not the one this page sends.", hint=_RESTART)
        form[name] = value
    if "state" not in form:
        raise StateRefused("no valid session")
    return form


def _sign_in_page(
    request: Request,
    *,
    reference: str,
    state: str,
    profile_name: str | None,
    username: str = "",
    error: PippinError | None = None,
) -> Response:
    """The sign-in form; shown again after a refused sign-in with ``error``, the state kept in the hidden field."""
    context = {
        "state": state,
        "profile_name": profile_name,
        "username": username[:MAX_USERNAME_CHARS],
        "error": error,
        "action": f"/enroll/web/{reference}",
    }
    status = 200 if error is None else 403 if isinstance(error, DirectoryUserDisabled) else status_for(error)
    response = _page(request, None, "enrollment_sign_in.html", context, status)
    if isinstance(error, SignInThrottled | PasswordWorkBusy):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _resources(request: Request) -> ServerResources:
    resources = request.app.state.resources
    assert isinstance(resources, ServerResources)
    return resources


#: Refusals after which the same page may be tried again: the form is shown again with the error.
_TRY_AGAIN = (SignInFailed, DirectoryUserDisabled, SignInThrottled, PasswordWorkBusy)

router = APIRouter()


@router.get("/{reference}", response_class=HTMLResponse)
async def open_page(request: Request, reference: str) -> Response:
    """The sign-in page for the device whose MachineInfo header is verified here, with a new state."""
    resources = _resources(request)

    def opened() -> web_enrollment.OpenedPage:
        info = _device_info(request, resources, required=True)
        assert info is not None
        with transaction(resources.session_factory) as session:
            return web_enrollment.open_page(
                session, box=resources.secret_box, reference=reference, machine_info=info, now=resources.clock()
            )

    try:
        page = await run_in_threadpool(opened)  # verifying the CMS and the database are blocking work
    except SoftwareUpdateRequired as required:
        return software_update_required(required.os_version, required.build_version)
    except PippinError as error:
        return _error_page(request, error)
    return _sign_in_page(request, reference=reference, state=page.state, profile_name=page.profile_name)


@router.post("/{reference}")
async def sign_in(request: Request, reference: str) -> Response:
    """A sign-in on the page: the profile for a good one, the page again for a wrong password, else a refusal."""
    resources = _resources(request)
    try:
        form = await _read_form(request)
    except PippinError as error:
        return _error_page(request, error)
    state, username, password = form["state"], form.get("username", ""), form.get("password", "")

    def enrolled() -> bytes:
        info = _device_info(request, resources, required=False)
        if not username.strip() or not password or len(password) > MAX_PASSWORD_CHARS:
            raise sign_in_failed()
        return web_enrollment.sign_in_and_enroll(
            resources.session_factory,
            settings=resources.settings,
            box=resources.secret_box,
            generate_key=resources.generate_key,
            work=resources.password_work,
            reference=reference,
            state=state,
            username=username,
            password=password,
            actor=Actor(name=ANONYMOUS, interface=Interface.device, source=client_address(request)),
            now=resources.clock(),
            machine_info=info,
        )

    def still_open() -> str:
        with read_transaction(resources.session_factory) as session:
            target = web_enrollment.page_target(resources.secret_box, reference)
            states.find_state(session, state=state, target=target, now=resources.clock())
            return web_enrollment.page_profile_name(session, box=resources.secret_box, reference=reference)

    try:
        profile = await run_in_threadpool(enrolled)
    except SoftwareUpdateRequired as required:
        return software_update_required(required.os_version, required.build_version)
    except _TRY_AGAIN as refused:
        try:  # the page again while its state lives (a tenth wrong password ends it)
            profile_name = await run_in_threadpool(still_open)
        except PippinError as ended:
            return _error_page(request, ended)
        return _sign_in_page(
            request, reference=reference, state=state, profile_name=profile_name, username=username, error=refused
        )
    except PippinError as error:
        return _error_page(request, error)
    return Response(
        profile,
        media_type=PROFILE_MEDIA_TYPE,
        headers={"Cache-Control": "no-store", "Content-Disposition": 'attachment; filename="enroll.mobileconfig"'},
    )


def _bare(scope: Scope, status: int, message: str) -> Response:
    """A refusal drawn outside the routes (a body over the limit, a bug)."""
    context = {"title": "Setup cannot continue", "message": message, "hint": _RESTART}
    return _page(None, scope, "enrollment_refused.html", context, status)


def _bug(scope: Scope) -> Response:
    return _bare(scope, 500, "The server failed while answering; nothing you did caused it.")


_HTTP_MESSAGES = {
    404: "There is no enrollment sign-in page at this address.",
    405: "This page takes no such request.",
    413: "The form sent is larger than this page takes.",
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code if exc.status_code in _HTTP_MESSAGES else 400
    message = _HTTP_MESSAGES.get(status, "The request was refused.")
    return _refused(request, status=status, title="Setup cannot continue", message=message, hint=_RESTART)


async def _validation_error(request: Request, _exc: Exception) -> Response:
    message = "The request is not what this page reads."
    return _refused(request, status=400, title="Setup cannot continue", message=message, hint=_RESTART)


def create_enrollment_web_app(resources: ServerResources) -> FastAPI:
    """The sign-in page over ``resources``; mount it at ``/enroll/web``."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.resources = resources
    # Added first so it sits inside the unexpected-error guard.
    app.add_middleware(BodySizeLimit, max_bytes=MAX_REQUEST_BYTES, refuse=_bare)
    app.add_middleware(UnexpectedErrorMiddleware, respond=_bug, logger_name="pippin.device.enrollment_web")
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(router)
    return app
