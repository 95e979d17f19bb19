"""``/api/v1/devices``: the corporate-owned devices, the REST face of ``pippin.inventory.devices``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from pippin.api.deps import AdminRoute
from pippin.api.errors import ErrorRead
from pippin.errors import InvalidInput
from pippin.inventory import devices as inventory_service
from pippin.inventory.cursor import MAX_CURSOR_CHARS
from pippin.inventory.schemas import (
    AssignmentFilter,
    DeviceFilters,
    DeviceRead,
    DeviceSort,
    InventoryPage,
    SortDirection,
)
from pippin.inventory.state import DeviceState
from pippin.mdm.setup_schemas import SetupWatch
from pippin.server.deps import DBSession, Resources
from pippin.server.integers import WHOLE_NUMBER
from pippin.server.resources import ServerResources
from pippin.text import Line

router = APIRouter(prefix="/devices", tags=["devices"], route_class=AdminRoute)

_BAD_QUERY: dict[int | str, dict[str, Any]] = {400: {"model": ErrorRead, "description": "A filter or cursor is bad."}}


def _watch(resources: ServerResources) -> SetupWatch:
    return SetupWatch(now=resources.clock(), stuck_after=resources.settings.setup_stuck_after)


@router.get("", response_model=InventoryPage, responses=_BAD_QUERY)
def list_devices(
    session: DBSession,
    resources: Resources,
    state: Annotated[DeviceState | None, Query(description="Only devices in this state.")] = None,
    token: Annotated[Line | None, Query(max_length=64, description="Only devices of this DEP token.")] = None,
    profile: Annotated[Line | None, Query(max_length=125, description="Only devices given this profile.")] = None,
    assignment: Annotated[
        AssignmentFilter | None, Query(description="Only devices with this assignment status (none: no assignment).")
    ] = None,
    search: Annotated[
        Line | None,
        Query(max_length=inventory_service.MAX_SEARCH, description="Serial, model, asset tag, description."),
    ] = None,
    cannot_enroll: Annotated[
        bool | None,
        Query(description="Only devices that cannot enroll: assigned, not enrolled, Apple holds no profile."),
    ] = None,
    no_profile: Annotated[
        bool | None,
        Query(description="The former name of cannot_enroll; if both are given, they must agree.", deprecated=True),
    ] = None,
    unreachable: Annotated[
        bool | None,
        Query(
            description="Only devices Pippin cannot wake: APNs refused the push token they have now (the reason is "
            "in unreachable_reason); they are reachable again once they send a new token."
        ),
    ] = None,
    sort: Annotated[DeviceSort, Query(description="The order; the serial number breaks ties.")] = DeviceSort.serial,
    direction: Annotated[SortDirection, Query(description="asc or desc.")] = SortDirection.asc,
    limit: Annotated[int, Query(ge=1, le=inventory_service.MAX_PAGE), WHOLE_NUMBER] = 100,
    cursor: Annotated[
        Line | None,
        Query(max_length=MAX_CURSOR_CHARS, description="`next_cursor` of the previous page, with the same sort."),
    ] = None,
) -> InventoryPage:
    """All corporate-owned devices, filtered and ordered; follow ``next_cursor`` until it is null."""
    if cannot_enroll is not None and no_profile is not None and cannot_enroll != no_profile:
        raise InvalidInput(
            f"cannot_enroll={str(cannot_enroll).lower()} and no_profile={str(no_profile).lower()} disagree: "
            "no_profile is the former name of cannot_enroll.",
            hint="Send cannot_enroll only.",
        )
    filters = DeviceFilters(
        state=state,
        token=token,
        profile=profile,
        assignment=assignment,
        search=search,
        cannot_enroll=bool(cannot_enroll or no_profile),
        unreachable=bool(unreachable),
    )
    return inventory_service.list_devices(
        session,
        filters=filters,
        sort=sort,
        direction=direction,
        limit=limit,
        cursor=cursor,
        setup_watch=_watch(resources),
    )


@router.get(
    "/{serial}",
    response_model=DeviceRead,
    responses={
        400: {"model": ErrorRead, "description": "The serial number is not valid text."},
        404: {"model": ErrorRead, "description": "No device has this serial number."},
    },
)
def read_device(serial: str, session: DBSession, resources: Resources) -> DeviceRead:
    """One device by its serial number (case-sensitive), with its setup problem if it has one."""
    return inventory_service.get_device(session, serial=serial, setup_watch=_watch(resources))
