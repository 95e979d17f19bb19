"""All corporate-owned devices: the searchable, filterable, sortable table, and one device's page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from pippin.admin import audit as audit_service
from pippin.console import device_table
from pippin.console.auth import Viewer
from pippin.console.rendering import render
from pippin.dep import inventory as inventory_service
from pippin.dep import sync_runs as sync_run_service
from pippin.dep import token as token_service
from pippin.dep.inventory_schemas import ENROLLMENT_STATE_LABELS
from pippin.errors import PippinError
from pippin.server.deps import DBSession
from pippin.store.models import Device, EnrollmentProfile

router = APIRouter()
_TEXT = Query(max_length=device_table.MAX_SEARCH)


@router.get("/devices", response_class=HTMLResponse)
def device_list(
    request: Request,
    db: DBSession,
    signed_in: Viewer,
    q: Annotated[str, _TEXT] = "",
    state: Annotated[str, Query(max_length=32)] = "",
    token: Annotated[str, Query(max_length=64)] = "",
    profile: Annotated[str, Query(max_length=128)] = "",
    assignment: Annotated[str, Query(max_length=32)] = "",
    sort: Annotated[str, Query(max_length=32)] = "serial",
    after: Annotated[str | None, Query(max_length=device_table.MAX_CURSOR_CHARS)] = None,
) -> Response:
    filters = device_table.DeviceFilters(
        search=q.strip(), state=state, token=token, profile=profile, assignment=assignment, sort=sort
    )
    error: PippinError | None = None
    try:
        page = device_table.list_device_rows(db, filters=filters, cursor=after)
    except PippinError as refused:
        error, page = refused, device_table.DeviceTablePage(rows=[], next_cursor=None)
    return render(
        request,
        "devices.html",
        {
            "filters": filters,
            "page": page,
            "error": error,
            "after": after,
            "states": ENROLLMENT_STATE_LABELS,
            "sorts": device_table.SORT_LABELS,
            "assignment_statuses": device_table.ASSIGNMENT_STATUSES,
            "tokens": [item.name for item in token_service.list_tokens(db)],
        },
        status_code=400 if error else 200,
    )


@router.get("/devices/{serial}", response_class=HTMLResponse)
def device_detail(request: Request, db: DBSession, signed_in: Viewer, serial: str) -> Response:
    device = inventory_service.get_device(db, serial=serial)
    record, profile_name = db.execute(
        select(Device, EnrollmentProfile.name)
        .outerjoin(EnrollmentProfile, EnrollmentProfile.id == Device.assigned_profile_id)
        .where(Device.serial_number == device.serial_number)
    ).one()
    syncs = sync_run_service.list_sync_runs(db, token_name=device.token, limit=10) if device.token else []
    history = audit_service.list_events(db, target=device.serial_number, limit=50)
    return render(
        request,
        "device.html",
        {
            "device": device,
            "record": record,
            "apple_record": record.apple_record,
            "profile_name": profile_name,
            "syncs": syncs,
            "history": history,
        },
    )
