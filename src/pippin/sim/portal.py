"""Apple Business Manager as a JSON API under ``/portal/``: MDM servers, tokens, devices, assignment, terms.

Routes only translate HTTP into calls on ``servers``, ``tokens``, ``inventory``, ``assignment`` and
``activation``, each in one transaction of the simulator's state. Every refusal is a 4xx JSON object
``{"error": code, "detail": message[, "problems": [...]]}`` and leaves the state as it was; bodies are capped.
The HTML pages for people (``pages.py``) and the device-side activation route are mounted here too.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from pippin.sim import activation, assignment, enrollment_services, inventory, pages, servers, tokens
from pippin.sim.models import SimDevice, SimMDMServer, SimProfile
from pippin.sim.portal_errors import PortalError, invalid, not_found, read_capped_body
from pippin.sim.state import SimState


class PortalRoute(APIRoute):
    """Caps the body before anything parses it, and renders refusals as the portal's JSON errors."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def capped_handler(request: Request) -> Response:
            try:
                await read_capped_body(request)
                return await handle(request)
            except PortalError as error:
                return JSONResponse(error.body(), status_code=error.status)
            except StarletteHTTPException as error:
                if error.status_code != 400:
                    raise
                # FastAPI's own answer to a body that is not JSON at all: the portal's shape instead.
                body = {"error": "invalid_request", "detail": "The request body is not valid JSON."}
                return JSONResponse(body, status_code=400)
            except RequestValidationError as error:
                problems = [{"loc": list(item["loc"]), "problem": item["msg"]} for item in error.errors()[:20]]
                body = {"error": "invalid_request", "detail": "The request body or parameters are malformed."}
                return JSONResponse({**body, "problems": problems}, status_code=400)

        return capped_handler


router = APIRouter(route_class=PortalRoute)


def sim_state(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


def device_rng(request: Request) -> random.Random:
    """The generator for new devices: seeded by ``pippin sim apple --seed``, else from the OS."""
    rng = getattr(request.app.state, "device_rng", None)
    if not isinstance(rng, random.Random):
        rng = random.Random()
        request.app.state.device_rng = rng
    return rng


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MDMServerCreate(Strict):
    name: StrictStr = Field(max_length=1000)
    public_key_pem: StrictStr = Field(max_length=tokens.MAX_PEM_BYTES)
    admin_apple_id: StrictStr = Field(max_length=1000)


class PublicKeyUpdate(Strict):
    public_key_pem: StrictStr = Field(max_length=tokens.MAX_PEM_BYTES)


class DevicesCreate(Strict):
    count: StrictInt
    order_number: StrictStr | None = Field(default=None, min_length=1, max_length=64)
    family: StrictStr | None = None
    seed: StrictInt | None = None


class DeviceUpdate(Strict):
    asset_tag: StrictStr | None = Field(default=None, max_length=128)
    color: StrictStr | None = Field(default=None, min_length=1, max_length=64)
    description: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    model: StrictStr | None = Field(default=None, min_length=1, max_length=128)


class AssignmentCreate(Strict):
    server_uuid: StrictStr = Field(max_length=64)
    serials: list[Any] | None = Field(default=None, max_length=assignment.MAX_SERIALS_PER_REQUEST)
    order_numbers: list[Any] | None = Field(default=None, max_length=1000)
    assigned_by: StrictStr | None = Field(default=None, max_length=1000)


class AssignmentDelete(Strict):
    serials: list[Any] = Field(max_length=assignment.MAX_SERIALS_PER_REQUEST)


class ReplacementCreate(Strict):
    original_serial_number: StrictStr = Field(max_length=64)
    replacement_date: StrictStr | None = Field(
        default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD; today by the simulator's clock."
    )


class BetaToken(Strict):
    token: StrictStr
    title: StrictStr
    os: StrictStr


class BetaProgramUpdate(Strict):
    enabled: bool
    tokens: list[BetaToken] | None = Field(default=None, max_length=enrollment_services.MAX_BETA_TOKENS)


class CloudConfigurationRequest(Strict):
    serial_number: StrictStr = Field(max_length=64)


@router.post("/portal/mdm-servers", status_code=201)
def create_mdm_server(body: MDMServerCreate, request: Request) -> dict[str, Any]:
    state = sim_state(request)
    with state.transaction() as session:
        server = servers.create_server(
            session,
            name=body.name,
            public_key_pem=body.public_key_pem,
            admin_apple_id=body.admin_apple_id,
            now=state.clock.now(),
            wall_now=state.clock.wall_now(),
        )
        return {"server_uuid": server.server_uuid, "name": server.name}


@router.get("/portal/mdm-servers")
def list_mdm_servers(request: Request, include_deleted: bool = False) -> dict[str, Any]:
    with sim_state(request).transaction() as session:
        return {"mdm_servers": servers.list_servers(session, include_deleted=include_deleted)}


@router.put("/portal/mdm-servers/{server_uuid}/public-key")
def replace_public_key(server_uuid: str, body: PublicKeyUpdate, request: Request) -> dict[str, Any]:
    state = sim_state(request)
    with state.transaction() as session:
        server = servers.replace_public_key(
            session, server_uuid=server_uuid, public_key_pem=body.public_key_pem, wall_now=state.clock.wall_now()
        )
        return {"server_uuid": server.server_uuid, "name": server.name}


@router.delete("/portal/mdm-servers/{server_uuid}")
def delete_mdm_server(server_uuid: str, request: Request) -> dict[str, Any]:
    state = sim_state(request)
    with state.transaction() as session:
        released = servers.delete_server(session, server_uuid=server_uuid, now=state.clock.now())
        return {"server_uuid": server_uuid, "deleted": True, "devices_released": released}


@router.get("/portal/mdm-servers/{server_uuid}/token")
def download_token(server_uuid: str, request: Request, apple_id: str | None = None) -> Response:
    state = sim_state(request)
    with state.transaction() as session:
        server = servers.get_server(session, server_uuid=server_uuid)
        downloader = servers.clean_apple_id(apple_id) if apple_id is not None else server.admin_apple_id
        issued = tokens.issue_token(session, server=server, apple_id=downloader, now=state.clock.now())
    return Response(
        content=issued.p7m,
        media_type="application/pkcs7-mime",
        headers={"Content-Disposition": f'attachment; filename="{issued.filename}"', "Cache-Control": "no-store"},
    )


@router.get("/portal/devices")
def list_devices(
    request: Request,
    server_uuid: Annotated[str | None, Query(max_length=64)] = None,
    unassigned: bool = False,
    order_number: Annotated[str | None, Query(max_length=64)] = None,
    serial_number: Annotated[str | None, Query(max_length=64)] = None,
    limit: int = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    with sim_state(request).transaction() as session:
        server = servers.get_server(session, server_uuid=server_uuid) if server_uuid else None
        return inventory.list_devices(
            session,
            server=server,
            unassigned=unassigned,
            order_number=order_number,
            serial_number=serial_number,
            limit=limit,
            cursor=cursor,
        )


@router.post("/portal/devices", status_code=201)
def create_devices(body: DevicesCreate, request: Request) -> dict[str, Any]:
    state = sim_state(request)
    rng = random.Random(body.seed) if body.seed is not None else device_rng(request)
    with state.transaction() as session:
        serials = inventory.create_devices(
            session, rng, count=body.count, now=state.clock.now(), order_number=body.order_number, family=body.family
        )
    return {"created": len(serials), "serials": serials}


@router.get("/portal/devices/{serial_number}")
def get_device(serial_number: str, request: Request) -> dict[str, Any]:
    with sim_state(request).transaction() as session:
        device = inventory.get_device(session, serial_number=serial_number)
        return inventory.device_view(device, server_uuid=_server_uuid(session, device.server_id))


@router.patch("/portal/devices/{serial_number}")
def update_device(serial_number: str, body: DeviceUpdate, request: Request) -> dict[str, Any]:
    state = sim_state(request)
    with state.transaction() as session:
        changes: dict[str, str | None] = body.model_dump(exclude_unset=True)
        device = inventory.update_device(session, serial_number=serial_number, changes=changes, now=state.clock.now())
        return inventory.device_view(device, server_uuid=_server_uuid(session, device.server_id))


@router.post("/portal/devices/{serial_number}/replacement", status_code=201)
def mark_replacement(serial_number: str, body: ReplacementCreate, request: Request) -> dict[str, Any]:
    """Record that AppleCare gave ``serial_number`` in place of ``original_serial_number``."""
    try:
        day = None if body.replacement_date is None else date.fromisoformat(body.replacement_date)
    except ValueError:
        raise invalid("invalid_field", "replacement_date is not a date (YYYY-MM-DD).") from None
    state = sim_state(request)
    with state.transaction() as session:
        now = state.clock.now()
        replacement = enrollment_services.mark_replacement(
            session,
            serial_number=serial_number,
            original_serial_number=body.original_serial_number,
            replacement_date=day or now.date(),
            now=now,
        )
        return {
            "serial_number": replacement.serial_number,
            "original_device_serial_number": replacement.original_serial_number,
            "replacement_date": replacement.replacement_date.isoformat(),
        }


@router.get("/portal/beta-enrollment")
def read_beta_program(request: Request) -> dict[str, Any]:
    with sim_state(request).transaction() as session:
        return enrollment_services.beta_program_view(enrollment_services.beta_program(session))


@router.put("/portal/beta-enrollment")
def update_beta_program(body: BetaProgramUpdate, request: Request) -> dict[str, Any]:
    """Turn AppleSeed for IT on or off, and replace the beta enrollment tokens when ``tokens`` is given."""
    tokens = None if body.tokens is None else [token.model_dump() for token in body.tokens]
    with sim_state(request).transaction() as session:
        program = enrollment_services.set_beta_program(session, enabled=body.enabled, tokens=tokens)
        return enrollment_services.beta_program_view(program)


@router.post("/portal/assignments")
def assign_devices(body: AssignmentCreate, request: Request) -> dict[str, Any]:
    if (body.serials is None) == (body.order_numbers is None):
        raise PortalError(400, "invalid_request", 'Give either "serials" or "order_numbers".')
    state = sim_state(request)
    with state.transaction() as session:
        server = servers.get_server(session, server_uuid=body.server_uuid)
        if body.serials is not None:
            serials = assignment.check_serials(body.serials)
        else:
            serials = assignment.serials_for_orders(session, body.order_numbers or [])
        return _assign(session, state, server, serials, body.assigned_by)


@router.post("/portal/assignments/csv")
async def assign_devices_from_csv(
    request: Request,
    server_uuid: Annotated[str, Query(max_length=64)],
    assigned_by: Annotated[str | None, Query(max_length=1000)] = None,
) -> dict[str, Any]:
    serials = assignment.parse_serial_csv(await request.body())
    state = sim_state(request)

    # The database work runs in the thread pool like every other route, off the event loop.
    def assign() -> dict[str, Any]:
        with state.transaction() as session:
            server = servers.get_server(session, server_uuid=server_uuid)
            return _assign(session, state, server, serials, assigned_by)

    return await run_in_threadpool(assign)


@router.delete("/portal/assignments")
def unassign_devices(body: AssignmentDelete, request: Request) -> dict[str, Any]:
    state = sim_state(request)
    serials = assignment.check_serials(body.serials)
    with state.transaction() as session:
        released = assignment.unassign_devices(session, serials=serials, now=state.clock.now())
    return {"unassigned": released, "unchanged": len(serials) - released}


@router.get("/portal/terms")
def read_terms(request: Request) -> dict[str, Any]:
    state = sim_state(request)
    with state.transaction() as session:
        return {"terms_pending": state.organization(session).terms_pending}


@router.post("/portal/terms")
def publish_terms(request: Request) -> dict[str, Any]:
    return _set_terms(request, pending=True)


@router.post("/portal/terms/accept")
def accept_terms(request: Request) -> dict[str, Any]:
    return _set_terms(request, pending=False)


@router.get("/portal/profiles/{profile_uuid}")
def read_profile(profile_uuid: str, request: Request) -> dict[str, Any]:
    with sim_state(request).transaction() as session:
        profile = session.get(SimProfile, profile_uuid)
        if profile is None:
            raise not_found("profile_not_found", f"No profile {profile_uuid!r} was defined.")
        serials = session.scalars(
            select(SimDevice.serial_number)
            .where(SimDevice.profile_uuid == profile_uuid, SimDevice.server_id == profile.server_id)
            .order_by(SimDevice.serial_number)
        )
        return {
            "profile_uuid": profile.profile_uuid,
            "server_uuid": _server_uuid(session, profile.server_id),
            "created_at": profile.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "profile": profile.body,
            "devices": list(serials),
        }


@router.post("/activation/cloud-configuration")
def cloud_configuration(body: CloudConfigurationRequest, request: Request) -> dict[str, Any]:
    state = sim_state(request)
    with state.transaction() as session:
        return activation.fetch_cloud_configuration(
            session, organization=state.organization(session), serial_number=body.serial_number, now=state.clock.now()
        )


def _assign(
    session: Session, state: SimState, server: SimMDMServer, serials: list[str], assigned_by: str | None
) -> dict[str, Any]:
    by = servers.clean_apple_id(assigned_by) if assigned_by is not None else server.admin_apple_id
    result = assignment.assign_devices(session, server=server, serials=serials, assigned_by=by, now=state.clock.now())
    return {"server_uuid": server.server_uuid, **result.as_dict()}


def _set_terms(request: Request, *, pending: bool) -> dict[str, Any]:
    state = sim_state(request)
    with state.transaction() as session:
        servers.set_terms_pending(session, state.organization(session), pending=pending)
    return {"terms_pending": pending}


def _server_uuid(session: Session, server_id: int | None) -> str | None:
    server = None if server_id is None else session.get(SimMDMServer, server_id)
    return None if server is None else server.server_uuid


router.include_router(pages.router)
