"""The Push Certificates Portal's pages for people: list, upload, renew and download push certificates.

Server-rendered HTML over the same ``push_certs`` functions as the JSON API (``push_portal.py``), one transaction
per form, post/redirect/get. The simulator has no sign-in: the page asks which Apple ID to act as, and keeps it
in the query string. A refusal renders the error page with the status and message the JSON API gives.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from pippin.sim import push_certs
from pippin.sim.pages import PageRoute, form_file, form_text, read_form, run_work, templates
from pippin.sim.portal_errors import invalid
from pippin.sim.servers import clean_apple_id
from pippin.sim.state import SimState

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE = "/portal/pages/push"


def _back(apple_id: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"{PAGE}?{urlencode({'apple_id': apple_id, 'notice': notice})}", status_code=303)


def _upload(form: dict[str, str | bytes]) -> bytes:
    data = form_file(form, "request")
    if not data:
        raise invalid("missing_file", "Choose the signed request file your MDM vendor returned.")
    return data


@router.get(PAGE, response_class=HTMLResponse)
async def push_certificates(request: Request) -> Response:
    given = request.query_params.get("apple_id") or ""
    apple_id = clean_apple_id(given) if given else None

    def read(state: SimState) -> list[dict[str, Any]]:
        if apple_id is None:
            return []
        with state.transaction() as session:
            return push_certs.list_certificates(session, apple_id=apple_id, now=state.clock.now())

    context = {
        "title": "Push certificates",
        "apple_id": apple_id,
        "certificates": await run_work(request, read),
        "notice": request.query_params.get("notice"),
    }
    return templates.TemplateResponse(request, "push.html", context)


@router.post(PAGE)
async def upload_request(request: Request) -> Response:
    form = await read_form(request)
    apple_id, data = form_text(form, "apple_id"), _upload(form)

    def create(state: SimState) -> str:
        with state.transaction() as session:
            row = push_certs.create_certificate(
                session, apple_id=apple_id, upload=data, now=state.clock.now(), wall_now=state.clock.wall_now()
            )
            return f"Created a push certificate for topic {row.topic}. Download it below."

    notice = await run_work(request, create)
    return _back(clean_apple_id(apple_id), notice)


@router.post(PAGE + "/{identifier}/renew")
async def renew(identifier: str, request: Request) -> Response:
    form = await read_form(request)
    apple_id, data = form_text(form, "apple_id"), _upload(form)

    def run(state: SimState) -> str:
        with state.transaction() as session:
            row = push_certs.renew_certificate(
                session,
                apple_id=apple_id,
                identifier=identifier,
                upload=data,
                now=state.clock.now(),
                wall_now=state.clock.wall_now(),
            )
            return f"Renewed: topic {row.topic} kept, new certificate valid until {row.not_after:%Y-%m-%d}."

    notice = await run_work(request, run)
    return _back(clean_apple_id(apple_id), notice)
