"""``/api/v1/devices``: the corporate-owned devices, the REST face of ``pippin.dep.inventory``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from pippin.api.errors import ErrorRead
from pippin.dep import inventory as inventory_service
from pippin.dep.inventory_schemas import DeviceRead, InventoryPage
from pippin.server.deps import DBSession

router = APIRouter(prefix="/devices", tags=["devices"])

_BAD_QUERY: dict[int | str, dict[str, Any]] = {400: {"model": ErrorRead, "description": "A filter or cursor is bad."}}


@router.get("", response_model=InventoryPage, responses=_BAD_QUERY)
def list_devices(
    session: DBSession,
    state: Annotated[str | None, Query(max_length=32, description="An enrollment state, e.g. not_contacted.")] = None,
    token: Annotated[str | None, Query(max_length=64, description="Only devices of this DEP token.")] = None,
    search: Annotated[
        str | None, Query(max_length=inventory_service.MAX_SEARCH, description="Serial, model, asset tag, description.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=inventory_service.MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=128, description="`next_cursor` of the previous page.")] = None,
    no_profile: Annotated[bool, Query(description="Only devices that cannot enroll: Apple holds no profile.")] = False,
) -> InventoryPage:
    """All corporate-owned devices, in serial order; follow ``next_cursor`` until it is null."""
    return inventory_service.list_devices(
        session, state=state, token=token, search=search, limit=limit, cursor=cursor, no_profile=no_profile
    )


@router.get(
    "/{serial}",
    response_model=DeviceRead,
    responses={404: {"model": ErrorRead, "description": "No device has this serial number."}},
)
def read_device(serial: str, session: DBSession) -> DeviceRead:
    """One device by its serial number (case-sensitive)."""
    return inventory_service.get_device(session, serial=serial)
