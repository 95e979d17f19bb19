"""All corporate-owned devices: the searchable, filterable, sortable table, and one device's page."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from pippin.admin import audit as audit_service
from pippin.console.auth import SignedInRoute, Viewer
from pippin.console.rendering import render
from pippin.dep import sync_runs as sync_run_service
from pippin.dep import token as token_service
from pippin.errors import InvalidInput, PippinError
from pippin.inventory import devices as inventory_service
from pippin.inventory.cursor import MAX_CURSOR_CHARS
from pippin.inventory.schemas import AssignmentFilter, DeviceFilters, DeviceSort, InventoryPage, SortDirection
from pippin.inventory.state import STATE_LABELS, DeviceState
from pippin.mdm.setup_schemas import SetupWatch
from pippin.server.deps import DBSession, Resources
from pippin.store.models import DEPProfile, Device

router = APIRouter(route_class=SignedInRoute)
PAGE_SIZE = 50
_TEXT = Query(max_length=inventory_service.MAX_SEARCH)

SORT_LABELS = {
    DeviceSort.serial: "Serial number",
    DeviceSort.model: "Model",
    DeviceSort.asset_tag: "Asset tag",
    DeviceSort.state: "State",
    DeviceSort.last_synced: "Last synced",
}
_E = TypeVar("_E", bound=StrEnum)


def _choice(kind: type[_E], value: str, what: str) -> _E | None:
    """The form's choice as the service's enum; a value the form never offers is refused with the page."""
    if not value:
        return None
    if value not in kind.__members__:
        raise InvalidInput(f"Unknown {what} {value[:40]!r}.", hint="Clear the filters and start again.")
    return kind(value)


@dataclass(frozen=True)
class DeviceForm:
    """The table's filters as the form sent them, shown back in the form and kept in the page links."""

    search: str = ""
    state: str = ""
    token: str = ""
    profile: str = ""
    assignment: str = ""
    cannot_enroll: bool = False
    sort: str = DeviceSort.serial.value
    direction: str = SortDirection.asc.value

    def query(self) -> str:
        """The form as a query string, for the paging links."""
        fields = {
            "q": self.search,
            "state": self.state,
            "token": self.token,
            "profile": self.profile,
            "assignment": self.assignment,
            "sort": self.sort,
            "direction": self.direction,
        }
        if self.cannot_enroll:
            fields["cannot_enroll"] = "1"
        return urlencode(fields)


def _list(db: DBSession, form: DeviceForm, after: str | None) -> InventoryPage:
    filters = DeviceFilters(
        search=form.search or None,
        state=_choice(DeviceState, form.state, "state"),
        token=form.token or None,
        profile=form.profile or None,
        assignment=_choice(AssignmentFilter, form.assignment, "assignment status"),
        cannot_enroll=form.cannot_enroll,
    )
    sort = _choice(DeviceSort, form.sort, "sort order") or DeviceSort.serial
    direction = _choice(SortDirection, form.direction, "direction") or SortDirection.asc
    return inventory_service.list_devices(
        db, filters=filters, sort=sort, direction=direction, limit=PAGE_SIZE, cursor=after
    )


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
    cannot_enroll: Annotated[str, Query(max_length=8)] = "",
    sort: Annotated[str, Query(max_length=32)] = DeviceSort.serial.value,
    direction: Annotated[str, Query(max_length=8)] = SortDirection.asc.value,
    after: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
) -> Response:
    form = DeviceForm(
        search=q.strip(),
        state=state,
        token=token,
        profile=profile,
        assignment=assignment,
        cannot_enroll=cannot_enroll in ("1", "on", "true"),
        sort=sort,
        direction=direction,
    )
    error: PippinError | None = None
    try:
        page = _list(db, form, after)
    except PippinError as refused:
        error, page = refused, InventoryPage(devices=[], next_cursor=None)
    return render(
        request,
        "devices.html",
        {
            "filters": form,
            "page": page,
            "error": error,
            "after": after,
            "states": {state.value: label for state, label in STATE_LABELS.items()},
            "sorts": {sort.value: label for sort, label in SORT_LABELS.items()},
            "sort_label": SORT_LABELS.get(DeviceSort(sort), sort) if sort in DeviceSort.__members__ else sort,
            "assignment_statuses": [choice.value for choice in AssignmentFilter],
            "tokens": [item.name for item in token_service.list_tokens(db)],
        },
        status_code=400 if error else 200,
    )


@router.get("/devices/{serial}", response_class=HTMLResponse)
def device_detail(request: Request, db: DBSession, resources: Resources, signed_in: Viewer, serial: str) -> Response:
    watch = SetupWatch(now=resources.clock(), stuck_after=resources.settings.setup_stuck_after)
    device = inventory_service.get_device(db, serial=serial, setup_watch=watch)
    found = db.execute(
        select(Device, DEPProfile.name)
        .outerjoin(DEPProfile, DEPProfile.id == Device.assigned_profile_id)
        .where(Device.serial_number == device.serial_number)
    ).one_or_none()
    # A device enrolled through a manual enrollment link has no DEP record: its enrollment is all there is.
    record, profile_name = (found[0], found[1]) if found is not None else (None, None)
    syncs = sync_run_service.list_sync_runs(db, token_name=device.token, limit=10) if device.token else []
    history = audit_service.list_events(db, target=device.serial_number, limit=50)
    return render(
        request,
        "device.html",
        {
            "device": device,
            "record": record,
            "apple_record": record.apple_record if record is not None else None,
            "profile_name": profile_name,
            "syncs": syncs,
            "history": history,
        },
    )
