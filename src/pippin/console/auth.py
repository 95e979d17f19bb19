"""Sign-in, sign-out, and who is asking: the dependencies that guard every console page and form.

Every page needs a signed-in admin: its router is built with :class:`SignedInRoute`, which checks the session
before anything reads the request's form, and the route takes :data:`Viewer`. Every form that changes something
needs :data:`Changer`, which then checks the CSRF token and the role, server-side: a read-only admin's post is
refused whatever the page showed. Forms pass the signed-in admin's :attr:`SignedIn.actor` to the use
case, which records the change in the audit log in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from pippin.admin import sessions as session_service
from pippin.admin import users as user_service
from pippin.admin.actor import ANONYMOUS
from pippin.admin.audit import Actor, Interface
from pippin.admin.passwords import PasswordWorkBusy
from pippin.console import csrf
from pippin.console.forms import CheckedFormRoute
from pippin.console.rendering import redirect, render
from pippin.errors import PippinError
from pippin.server.deps import DBSession, Resources, server_resources
from pippin.server.proxies import came_over_https, client_address
from pippin.store.db import read_transaction
from pippin.store.models import AdminRole


class SignInRequired(PippinError):
    """No live session: the console answers with the sign-in page (a redirect), never with data."""

    code = "sign_in_required"


class ReadOnlyAdmin(PippinError):
    """A read-only admin sent a form that would change something (answered 403; nothing is changed)."""

    code = "read_only"

    def __init__(self) -> None:
        super().__init__(
            "Your account is read-only, so it cannot change anything; nothing was changed.",
            hint="Ask an admin to make the change, or to create an admin account for you.",
        )


@dataclass(frozen=True)
class SignedIn:
    """The admin behind this request and the CSRF token their forms carry.

    Plain values, not ORM objects: an error page rendered after the request's transaction rolled back
    still shows who is signed in.
    """

    email: str
    role: str
    csrf_token: str
    source: str | None

    @property
    def read_only(self) -> bool:
        return self.role != AdminRole.admin

    @property
    def actor(self) -> Actor:
        """This admin as the audit log records them: the use case they call records its change with it."""
        return Actor(name=self.email, interface=Interface.console, source=self.source)


def _find_signed_in(request: Request) -> SignedIn:
    """The admin whose live session the request's cookie names, or :class:`SignInRequired`."""
    cookie = request.cookies.get(session_service.COOKIE_NAME)
    signed_in: SignedIn | None = None
    with read_transaction(server_resources(request).session_factory) as session:
        found = session_service.find_session(session, cookie=cookie)
        if found is not None and cookie is not None:
            _, user = found
            signed_in = SignedIn(
                email=user.email,
                role=user.role,
                csrf_token=session_service.csrf_token_for(cookie),
                source=client_address(request),
            )
    # Raised after the block: a session found expired is deleted, and that deletion commits.
    if signed_in is None:
        raise SignInRequired("Sign in to use the console.")
    return signed_in


class SignedInRoute(CheckedFormRoute):
    """A console route for signed-in admins: the session is checked before the form is read (and then checked as
    every console form is, see ``console/forms.py``).

    FastAPI reads a route's form before it resolves any dependency, so a dependency alone would parse (and
    answer about) forms from browsers with no session. This route looks the session up first, in a short
    transaction of its own, and sends anyone without one to the sign-in page; :data:`Viewer` then hands the
    route the admin it found (and error pages show them).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def sign_in_then_handle(request: Request) -> Response:
            request.state.signed_in = await run_in_threadpool(_find_signed_in, request)
            return await handle(request)

        return sign_in_then_handle


def _signed_in(request: Request) -> SignedIn:
    signed_in = getattr(request.state, "signed_in", None)
    if not isinstance(signed_in, SignedIn):
        # A route built without SignedInRoute: sent to sign in, never let in.
        raise SignInRequired("Sign in to use the console.")
    return signed_in


Viewer = Annotated[SignedIn, Depends(_signed_in)]


async def _changing(request: Request, signed_in: Viewer) -> SignedIn:
    form = await request.form()
    csrf.check(signed_in.csrf_token, form.get(csrf.FIELD))
    if signed_in.read_only:
        raise ReadOnlyAdmin()
    return signed_in


Changer = Annotated[SignedIn, Depends(_changing)]

#: Sign-in, open to anyone (it has its own CSRF cookie).
sign_in_router = APIRouter(route_class=CheckedFormRoute)
#: Sign-out, for signed-in admins; every other console router is built with SignedInRoute too.
router = APIRouter(route_class=SignedInRoute)


def _safe_next(target: str | None) -> str:
    """Only a console path: a sign-in link can never send the admin to another site."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/"


def _sign_in_page(
    request: Request,
    *,
    email: str = "",
    error: PippinError | None = None,
    status: int = 200,
    retry_after: int | None = None,
) -> Response:
    token = csrf.sign_in_token(request)
    response = render(
        request,
        "sign_in.html",
        {
            "csrf_token": token,
            "email": email[: user_service.MAX_EMAIL_CHARS],
            "error": error,
            "next": _safe_next(request.query_params.get("next")),
        },
        status_code=status,
    )
    csrf.set_sign_in_cookie(request, response, token)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@sign_in_router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request)


@sign_in_router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    resources: Resources,
    email: Annotated[str, Form(max_length=user_service.MAX_EMAIL_CHARS)] = "",
    password: Annotated[str, Form(max_length=user_service.MAX_PASSWORD_CHARS)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Check the password; on success start a session and set its cookie (HttpOnly, SameSite=Lax, and Secure
    when the request came over HTTPS, directly or through a trusted proxy).

    Answers 400 for a wrong address or password, 429 with ``Retry-After`` while the throttle refuses, 503 with
    ``Retry-After`` while too many sign-ins are being checked: the same page whether or not the account exists.
    """
    csrf.check(request.cookies.get(csrf.SIGN_IN_COOKIE), csrf_token)
    attempt_by = Actor(name=ANONYMOUS, interface=Interface.console, source=client_address(request))
    try:
        cookie = session_service.sign_in(
            resources.session_factory,
            email=email,
            password=password,
            actor=attempt_by,
            work=resources.password_work,
            secret_box=resources.secret_box,
            now=resources.clock(),
        )
    except user_service.SignInFailed as error:
        return _sign_in_page(request, email=email, error=error, status=400)
    except user_service.AccountDisabled as error:
        return _sign_in_page(request, email=email, error=error, status=403)
    except (user_service.SignInThrottled, PasswordWorkBusy) as error:
        status = 429 if isinstance(error, user_service.SignInThrottled) else 503
        return _sign_in_page(request, email=email, error=error, status=status, retry_after=error.retry_after)
    form_next = request.query_params.get("next")
    response = redirect(request, _safe_next(form_next))
    response.set_cookie(
        session_service.COOKIE_NAME,
        cookie,
        max_age=int(session_service.MAX_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=came_over_https(request),
    )
    response.delete_cookie(csrf.SIGN_IN_COOKIE, path="/console")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, db: DBSession, signed_in: Viewer) -> Response:
    """End the session; read-only admins may sign out too, so only the CSRF token is checked."""
    form = await request.form()
    csrf.check(signed_in.csrf_token, form.get(csrf.FIELD))
    session_service.end_session(db, cookie=request.cookies.get(session_service.COOKIE_NAME))
    response = redirect(request, "/console/sign-in", notice="You are signed out.")
    response.delete_cookie(session_service.COOKIE_NAME, path="/")
    return response


def sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(request, f"/console/sign-in?next={quote(target, safe='')}")
