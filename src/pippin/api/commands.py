"""``/api/v1``'s MDM commands: queue one for a device or many, list a device's, cancel one, and approve a bulk
erase; the REST face of ``pippin.mdm.command_sending`` and ``pippin.mdm.command_approvals``.

Each route parses, calls the use case the CLI calls and returns its schema; statuses for errors come from
``api/errors.py``. The bulk and approval routes commit one transaction per batch of devices, so they open their own
transactions instead of the request's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from pippin.api.audit import APIChanger
from pippin.api.deps import AdminRoute
from pippin.api.errors import ErrorRead
from pippin.mdm import command_approvals as approval_service
from pippin.mdm import command_sending as sending_service
from pippin.mdm.command_schemas import (
    BulkCommandCreate,
    BulkCommandQueued,
    CommandApprovalRead,
    CommandCreate,
    CommandQueued,
    CommandRead,
)
from pippin.server.deps import DBSession, Resources
from pippin.server.integers import WHOLE_NUMBER
from pippin.store.db import read_transaction, transaction
from pippin.store.models import MAX_STORED_INTEGER

router = APIRouter(tags=["commands"], route_class=AdminRoute)

_Responses = dict[int | str, dict[str, Any]]
_BAD: _Responses = {400: {"model": ErrorRead, "description": "The command or a parameter is not what Apple allows."}}
_NO_DEVICE: _Responses = {404: {"model": ErrorRead, "description": "No device has this serial number."}}
_NOT_ENROLLED: _Responses = {409: {"model": ErrorRead, "description": "The device is not enrolled."}}
_NO_APPROVAL: _Responses = {404: {"model": ErrorRead, "description": "No such approval request."}}

ApprovalID = Annotated[int, Path(ge=1, le=MAX_STORED_INTEGER), WHOLE_NUMBER]


@router.post(
    "/devices/{serial}/commands",
    response_model=CommandQueued,
    status_code=201,
    responses={**_BAD, **_NO_DEVICE, **_NOT_ENROLLED},
)
def send_command(
    serial: str, body: CommandCreate, session: DBSession, resources: Resources, actor: APIChanger
) -> CommandQueued:
    """Queue a command for one enrolled device; it is pushed once committed and sent when the device connects."""
    return sending_service.send_command(
        session,
        serial=serial,
        request_type=body.request_type,
        payload=body.payload,
        box=resources.secret_box,
        settings=resources.settings,
        now=resources.clock(),
        actor=actor,
        expires_in=body.expires_in,
    )


@router.get(
    "/devices/{serial}/commands",
    response_model=list[CommandRead],
    responses={400: {"model": ErrorRead, "description": "The serial number is not valid text."}, **_NO_DEVICE},
)
def list_device_commands(
    serial: str,
    session: DBSession,
    resources: Resources,
    limit: Annotated[int, Query(ge=1, le=sending_service.MAX_LIST), WHOLE_NUMBER] = 100,
) -> list[CommandRead]:
    """The device's commands, newest first, each with its status, times, ErrorChain and parsed answer."""
    return sending_service.list_device_commands(session, serial=serial, box=resources.secret_box, limit=limit)


@router.post(
    "/devices/{serial}/commands/{command_uuid}/cancel",
    response_model=CommandRead,
    responses={
        400: {"model": ErrorRead, "description": "A path segment is not valid text."},
        404: {"model": ErrorRead, "description": "No such device, or it has no such command."},
        409: {"model": ErrorRead, "description": "The device fetched the command already."},
    },
)
def cancel_command(
    serial: str,
    command_uuid: Annotated[str, Path(max_length=64)],
    session: DBSession,
    resources: Resources,
    actor: APIChanger,
) -> CommandRead:
    """Cancel a command the device has not fetched yet (queued, or waiting after NotNow)."""
    return sending_service.cancel_command(
        session, serial=serial, command_uuid=command_uuid, box=resources.secret_box, now=resources.clock(), actor=actor
    )


@router.post(
    "/commands",
    response_model=BulkCommandQueued,
    status_code=202,
    responses={
        **_BAD,
        404: {"model": ErrorRead, "description": "A serial number names no device; nothing was queued."},
        409: {"model": ErrorRead, "description": "A device named is not enrolled; nothing was queued."},
    },
)
def send_bulk_command(body: BulkCommandCreate, resources: Resources, actor: APIChanger) -> BulkCommandQueued:
    """Queue one command for many devices, by serial number or by the device list's filters (enrolled devices
    only), one transaction per 1000 devices; a bulk erase is stored for a second admin's approval instead."""
    return sending_service.send_bulk(
        resources.session_factory,
        request_type=body.request_type,
        payload=body.payload,
        serials=body.serials,
        filters=body.filters(),
        box=resources.secret_box,
        settings=resources.settings,
        clock=resources.clock,
        actor=actor,
        bulk_id=str(body.bulk_id) if body.bulk_id is not None else None,
        expires_in=body.expires_in,
    )


@router.get("/command-approvals", response_model=list[CommandApprovalRead])
def list_approvals(
    session: DBSession,
    resources: Resources,
    limit: Annotated[int, Query(ge=1, le=approval_service.MAX_LIST), WHOLE_NUMBER] = 100,
) -> list[CommandApprovalRead]:
    """Bulk erase requests, newest first: pending, expired, approved, queued."""
    return approval_service.list_approvals(session, now=resources.clock(), limit=limit)


@router.get("/command-approvals/{approval_id}", response_model=CommandApprovalRead, responses=_NO_APPROVAL)
def read_approval(approval_id: ApprovalID, session: DBSession, resources: Resources) -> CommandApprovalRead:
    return approval_service.get_approval(session, approval_id=approval_id, now=resources.clock())


@router.post(
    "/command-approvals/{approval_id}/approve",
    response_model=CommandApprovalRead,
    responses={
        **_NO_APPROVAL,
        409: {"model": ErrorRead, "description": "It is your own request, it expired, or it was queued already."},
    },
)
def approve(approval_id: ApprovalID, resources: Resources, actor: APIChanger) -> CommandApprovalRead:
    """Approve another admin's bulk erase and queue it (or finish queuing one that stopped half-way)."""
    with transaction(resources.session_factory) as session:
        approval_service.approve(session, approval_id=approval_id, now=resources.clock(), actor=actor)
    approval_service.queue_approved(
        resources.session_factory,
        approval_id=approval_id,
        box=resources.secret_box,
        settings=resources.settings,
        clock=resources.clock,
        actor=actor,
    )
    with read_transaction(resources.session_factory) as session:
        return approval_service.get_approval(session, approval_id=approval_id, now=resources.clock())
