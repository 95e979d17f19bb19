"""The query behind the console's "All corporate-owned devices" table: filters, sort orders, keyset paging.

Every order is completed by the serial number (unique), and a page continues after the (sort value, serial)
of the previous page's last row: no OFFSET, so page 1000 costs what page 1 does. Null sort values sort as
the empty string so the cursor comparison stays one tuple comparison on both databases.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, tuple_
from sqlalchemy.orm import Session

from pippin.dep.inventory_schemas import DeviceRead
from pippin.errors import InvalidInput
from pippin.store.models import AssignmentStatus, DEPToken, Device, EnrollmentProfile, EnrollmentState

PAGE_SIZE = 50
MAX_SEARCH = 128
MAX_CURSOR_CHARS = 400

#: What the table can be sorted by, and the column behind each choice.
SORTS: dict[str, Any] = {
    "serial": Device.serial_number,
    "model": Device.model,
    "asset_tag": Device.asset_tag,
    "state": Device.enrollment_state,
    "last_synced": Device.last_synced_at,
}
SORT_LABELS = {
    "serial": "Serial number",
    "model": "Model",
    "asset_tag": "Asset tag",
    "state": "Enrollment state",
    "last_synced": "Last synced",
}
ASSIGNMENT_STATUSES = (*(status.value for status in AssignmentStatus), "none")


@dataclass(frozen=True)
class DeviceFilters:
    search: str = ""
    state: str = ""
    token: str = ""
    profile: str = ""
    assignment: str = ""
    sort: str = "serial"


@dataclass(frozen=True)
class DeviceRow:
    device: DeviceRead
    profile: str | None
    assignment_status: str | None


@dataclass(frozen=True)
class DeviceTablePage:
    rows: list[DeviceRow]
    next_cursor: str | None


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, hint="Clear the filters and start again.")


def _sort_key(column: Any) -> ColumnElement[Any]:
    if column is Device.last_synced_at:
        return column.expression  # never null
    return func.coalesce(column, "")


def _encode(value: Any, serial: str) -> str:
    text = value.isoformat() if hasattr(value, "isoformat") else value
    return base64.urlsafe_b64encode(json.dumps([text, serial]).encode()).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> tuple[Any, str]:
    if len(cursor) > MAX_CURSOR_CHARS:
        raise _bad("The page link is not one the console made.")
    try:
        value, serial = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError):
        raise _bad("The page link is not one the console made.") from None
    if not isinstance(value, str) or not isinstance(serial, str):
        raise _bad("The page link is not one the console made.")
    if sort == "last_synced":
        try:
            return datetime.fromisoformat(value), serial
        except ValueError:
            raise _bad("The page link is not one the console made.") from None
    return value, serial


def list_device_rows(
    session: Session, *, filters: DeviceFilters, cursor: str | None = None, limit: int = PAGE_SIZE
) -> DeviceTablePage:
    """One page of the table for these filters, in the chosen order."""
    if filters.sort not in SORTS:
        raise _bad(f"The table cannot be sorted by {filters.sort[:40]!r}.")
    if len(filters.search) > MAX_SEARCH:
        raise InvalidInput(f"The search text is longer than {MAX_SEARCH} characters.", hint="Search for less.")
    column = SORTS[filters.sort]
    key = _sort_key(column)
    query = (
        select(Device, DEPToken.name, EnrollmentProfile.name, key)
        .outerjoin(DEPToken, DEPToken.id == Device.token_id)
        .outerjoin(EnrollmentProfile, EnrollmentProfile.id == Device.assigned_profile_id)
    )
    if filters.state:
        if filters.state not in EnrollmentState.__members__:
            raise _bad(f"Unknown enrollment state {filters.state[:40]!r}.")
        query = query.where(Device.enrollment_state == filters.state)
    if filters.token:
        query = query.where(DEPToken.name == filters.token)
    if filters.profile:
        query = query.where(EnrollmentProfile.name == filters.profile)
    if filters.assignment:
        if filters.assignment not in ASSIGNMENT_STATUSES:
            raise _bad(f"Unknown assignment status {filters.assignment[:40]!r}.")
        if filters.assignment == "none":
            query = query.where(Device.assignment_status.is_(None))
        else:
            query = query.where(Device.assignment_status == filters.assignment)
    if filters.search:
        escaped = filters.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        columns = (Device.serial_number, Device.model, Device.asset_tag)
        query = query.where(or_(*(item.ilike(pattern, escape="\\") for item in columns)))
    if cursor:
        value, serial = _decode(cursor, filters.sort)
        query = query.where(tuple_(key, Device.serial_number) > tuple_(value, serial))
    rows = session.execute(query.order_by(key, Device.serial_number).limit(limit + 1)).all()
    page = [
        DeviceRow(
            device=DeviceRead.model_validate(
                {**{name: getattr(device, name) for name in DeviceRead.model_fields if name != "token"}, "token": tok}
            ),
            profile=profile,
            assignment_status=device.assignment_status,
        )
        for device, tok, profile, _ in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = _encode(last[3], last[0].serial_number)
    return DeviceTablePage(rows=page, next_cursor=next_cursor)


def count_by_state(session: Session) -> dict[str, int]:
    """How many devices are in each enrollment state (the overview's counts)."""
    counts = session.execute(select(Device.enrollment_state, func.count()).group_by(Device.enrollment_state)).all()
    return {str(state): count for state, count in counts}


def count_assignment_problems(session: Session) -> dict[str, int]:
    """Devices whose profile could not be given at Apple (failed) or must wait (throttled)."""
    counts = session.execute(
        select(Device.assignment_status, func.count())
        .where(Device.assignment_status.in_((AssignmentStatus.failed, AssignmentStatus.throttled)))
        .group_by(Device.assignment_status)
    ).all()
    return {str(status): count for status, count in counts}
