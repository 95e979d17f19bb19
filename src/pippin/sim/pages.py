"""Business Manager's pages for people: plain server-rendered HTML over the same logic as the JSON portal.

Forms post here, the handler calls the same ``servers`` / ``tokens`` / ``inventory`` / ``assignment``
functions as ``portal.py`` in one transaction, then redirects back with a notice (post/redirect/get).
A refusal renders an error page with the same status and message the JSON API would give.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from pippin.sim import assignment, inventory, servers
from pippin.sim.models import SimDevice
from pippin.sim.portal_errors import PortalError, invalid, read_capped_body
from pippin.sim.state import SimState

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
T = TypeVar("T")


class PageRoute(APIRoute):
    """Caps form bodies like the JSON portal, and shows refusals as an HTML page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                await read_capped_body(request)
                return await handle(request)
            except PortalError as error:
                context = {"title": "Not done", "error": error.detail, "problems": error.problems or []}
                return templates.TemplateResponse(request, "error.html", context, status_code=error.status)

        return page_handler


router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _state(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


async def run_work(request: Request, work: Callable[[SimState], T]) -> T:
    """Run ``work`` in the thread pool (database calls never block the event loop)."""
    state = _state(request)
    return await run_in_threadpool(work, state)


def _back(path: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'notice': notice})}", status_code=303)


Form = dict[str, str | bytes]


async def read_form(request: Request) -> Form:
    """Every field of a posted form, files read into bytes, and the form's temporary files closed."""
    values: Form = {}
    async with request.form(max_files=2, max_fields=20) as form:
        for key, value in form.multi_items():
            values[key] = await value.read() if isinstance(value, UploadFile) else value
    return values


def form_text(form: Form, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def form_file(form: Form, name: str) -> bytes:
    value = form.get(name)
    return value if isinstance(value, bytes) else b""


@router.get("/portal/", response_class=HTMLResponse)
async def overview(request: Request) -> Response:
    def read(state: SimState) -> dict[str, Any]:
        with state.transaction() as session:
            org = state.organization(session)
            total = session.scalar(select(func.count()).select_from(SimDevice)) or 0
            assigned = session.scalar(select(func.count()).where(SimDevice.server_id.is_not(None))) or 0
            return {"org": org, "total": total, "assigned": assigned, "servers": servers.list_servers(session)}

    context = await run_work(request, read)
    context |= {"title": "Overview", "base_url": str(request.base_url).rstrip("/")}
    return templates.TemplateResponse(request, "overview.html", context)


@router.get("/portal/pages/servers", response_class=HTMLResponse)
async def server_list(request: Request) -> Response:
    def read(state: SimState) -> list[dict[str, Any]]:
        with state.transaction() as session:
            return servers.list_servers(session)

    context = {
        "title": "MDM servers",
        "servers": await run_work(request, read),
        "notice": request.query_params.get("notice"),
    }
    return templates.TemplateResponse(request, "servers.html", context)


@router.post("/portal/pages/servers")
async def add_server(request: Request) -> Response:
    form = await read_form(request)
    pem = form_file(form, "public_key")

    def create(state: SimState) -> str:
        with state.transaction() as session:
            server = servers.create_server(
                session,
                name=form_text(form, "name"),
                public_key_pem=pem.decode("utf-8", "replace"),
                admin_apple_id=form_text(form, "admin_apple_id"),
                now=state.clock.now(),
                wall_now=state.clock.wall_now(),
            )
            return f"Added {server.name} ({server.server_uuid}). Download its token below."

    return _back("/portal/pages/servers", await run_work(request, create))


@router.post("/portal/pages/servers/{server_uuid}/delete")
async def remove_server(server_uuid: str, request: Request) -> Response:
    def delete(state: SimState) -> str:
        with state.transaction() as session:
            released = servers.delete_server(session, server_uuid=server_uuid, now=state.clock.now())
            return f"Deleted the MDM server; {released} devices were released."

    return _back("/portal/pages/servers", await run_work(request, delete))


@router.get("/portal/pages/devices", response_class=HTMLResponse)
async def device_list(request: Request) -> Response:
    query = request.query_params

    def read(state: SimState) -> dict[str, Any]:
        with state.transaction() as session:
            server_uuid = query.get("server_uuid") or None
            server = servers.get_server(session, server_uuid=server_uuid) if server_uuid else None
            page = inventory.list_devices(
                session,
                server=server,
                order_number=query.get("order_number") or None,
                serial_number=query.get("serial_number") or None,
                cursor=query.get("cursor") or None,
                limit=50,
            )
            return {"page": page, "servers": servers.list_servers(session)}

    context = await run_work(request, read)
    filters = {key: value for key, value in query.items() if key in ("serial_number", "order_number", "server_uuid")}
    next_cursor = context["page"]["next_cursor"]
    next_query = urlencode({**filters, "cursor": next_cursor}) if next_cursor else None
    context |= {"title": "Devices", "query": filters, "next_query": next_query, "notice": query.get("notice")}
    return templates.TemplateResponse(request, "devices.html", context)


@router.post("/portal/pages/devices")
async def add_devices(request: Request) -> Response:
    form = await read_form(request)
    count_text, family = form_text(form, "count"), form_text(form, "family") or None
    if not count_text.isdigit():
        raise invalid("invalid_count", "How many devices? Give a whole number.")

    def create(state: SimState) -> str:
        with state.transaction() as session:
            # The generator `pippin sim apple --seed` installed, so page-made devices are reproducible too.
            shared = getattr(request.app.state, "device_rng", None)
            rng = shared if isinstance(shared, random.Random) else random.Random()
            serials = inventory.create_devices(
                session, rng, count=int(count_text), now=state.clock.now(), family=family
            )
            return f"Added {len(serials)} devices."

    return _back("/portal/pages/devices", await run_work(request, create))


@router.post("/portal/pages/assignments")
async def assign(request: Request) -> Response:
    form = await read_form(request)
    server_uuid, how = form_text(form, "server_uuid"), form_text(form, "how")
    csv_data = form_file(form, "csv")

    def run(state: SimState) -> str:
        with state.transaction() as session:
            server = servers.get_server(session, server_uuid=server_uuid)
            if how == "orders":
                serials = assignment.serials_for_orders(session, form_text(form, "order_numbers").split())
            elif how == "csv":
                serials = assignment.parse_serial_csv(csv_data)
            else:
                serials = assignment.check_serials(form_text(form, "serials").split())
            result = assignment.assign_devices(
                session, server=server, serials=serials, assigned_by=server.admin_apple_id, now=state.clock.now()
            )
            return f"Assigned {result.assigned}, moved {result.moved}, already there {result.unchanged}."

    return _back("/portal/pages/devices", await run_work(request, run))


@router.post("/portal/pages/assignments/remove")
async def unassign(request: Request) -> Response:
    form = await read_form(request)

    def run(state: SimState) -> str:
        serials = assignment.check_serials(form_text(form, "serials").split())
        with state.transaction() as session:
            released = assignment.unassign_devices(session, serials=serials, now=state.clock.now())
            return f"Unassigned {released} devices."

    return _back("/portal/pages/devices", await run_work(request, run))


@router.get("/portal/pages/terms", response_class=HTMLResponse)
async def terms(request: Request) -> Response:
    def read(state: SimState) -> bool:
        with state.transaction() as session:
            return state.organization(session).terms_pending

    context = {"title": "Terms", "pending": await run_work(request, read), "notice": request.query_params.get("notice")}
    return templates.TemplateResponse(request, "terms.html", context)


@router.post("/portal/pages/terms")
async def change_terms(request: Request) -> Response:
    form = await read_form(request)
    action = form_text(form, "action")
    if action not in ("publish", "accept"):
        raise invalid("invalid_action", "Choose publish or accept.")

    def run(state: SimState) -> str:
        with state.transaction() as session:
            servers.set_terms_pending(session, state.organization(session), pending=action == "publish")
        return (
            "New terms published: DEP calls now fail until they are accepted."
            if action == "publish"
            else ("Terms accepted.")
        )

    return _back("/portal/pages/terms", await run_work(request, run))
