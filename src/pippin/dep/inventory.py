"""The inventory, "All corporate-owned devices": listing with filters and keyset paging, and one device by serial.

Paging is by serial number (unique, indexed) with an opaque cursor, so a page costs the same at the start and
the end of a fleet of any size, and devices added meanwhile never shift a page (no OFFSET).
"""

from __future__ import annotations

import base64
import binascii

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from pippin.dep.inventory_schemas import DeviceRead, InventoryPage
from pippin.errors import InvalidInput, NotFound
from pippin.store.models import DEPToken, Device, EnrollmentState
from pippin.store.models.device import ENROLLABLE_PROFILE_STATUSES

MAX_PAGE = 500
MAX_SEARCH = 128
_SERIAL_MAX = 64


def encode_cursor(serial: str) -> str:
    return base64.urlsafe_b64encode(serial.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The serial a cursor continues after; a cursor not made by :func:`encode_cursor` is refused."""
    if not 0 < len(cursor) <= 128:
        raise _bad_cursor()
    try:
        serial = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        raise _bad_cursor() from None
    if not 0 < len(serial) <= _SERIAL_MAX or encode_cursor(serial) != cursor:
        raise _bad_cursor()
    return serial


def _bad_cursor() -> InvalidInput:
    return InvalidInput("The paging cursor is not one Pippin issued.", hint="Start again without a cursor.")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _device_query() -> Select[Device, str]:
    # The outer join yields None for a device whose token was deleted; typing says str, _read accepts both.
    return select(Device, DEPToken.name).outerjoin(DEPToken, DEPToken.id == Device.token_id)


def _read(device: Device, token_name: str | None) -> DeviceRead:
    return DeviceRead.model_validate({**_columns(device), "token": token_name})


def _columns(device: Device) -> dict[str, object]:
    return {name: getattr(device, name) for name in DeviceRead.model_fields if name != "token"}


def list_devices(
    session: Session,
    *,
    state: str | None = None,
    token: str | None = None,
    search: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
    no_profile: bool = False,
) -> InventoryPage:
    """A page of devices in serial order, filtered by enrollment state, token name and a search text.

    ``search`` matches anywhere in the serial, model, asset tag or description, ignoring case; ``no_profile``
    keeps the devices that cannot enroll because Apple holds no profile for them.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}.", hint="Page through with next_cursor.")
    query = _device_query()
    if state is not None:
        if state not in EnrollmentState.__members__:
            known = ", ".join(EnrollmentState.__members__)
            raise InvalidInput(f"Unknown enrollment state {state[:40]!r}.", hint=f"Use one of: {known}.")
        query = query.where(Device.enrollment_state == state)
    if token is not None:
        query = query.where(DEPToken.name == token)
    if search:
        if len(search) > MAX_SEARCH:
            raise InvalidInput(f"The search text is longer than {MAX_SEARCH} characters.", hint="Search for less.")
        pattern = f"%{_escape_like(search)}%"
        query = query.where(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (Device.serial_number, Device.model, Device.asset_tag, Device.description)
                )
            )
        )
    if no_profile:
        query = query.where(
            Device.enrollment_state != EnrollmentState.removed,
            or_(Device.profile_status.is_(None), Device.profile_status.not_in(ENROLLABLE_PROFILE_STATUSES)),
        )
    if cursor is not None:
        query = query.where(Device.serial_number > decode_cursor(cursor))
    rows = session.execute(query.order_by(Device.serial_number).limit(limit + 1)).all()
    devices = [_read(device, name) for device, name in rows[:limit]]
    next_cursor = encode_cursor(devices[-1].serial_number) if len(rows) > limit else None
    return InventoryPage(devices=devices, next_cursor=next_cursor)


def find_device(session: Session, *, serial: str) -> DeviceRead | None:
    if not 0 < len(serial) <= _SERIAL_MAX:
        return None
    row = session.execute(_device_query().where(Device.serial_number == serial)).one_or_none()
    return None if row is None else _read(row[0], row[1])


def get_device(session: Session, *, serial: str) -> DeviceRead:
    """One device by serial number (case-sensitive, as Apple's are); :class:`NotFound` with a hint."""
    device = find_device(session, serial=serial)
    if device is None:
        raise NotFound(
            f"No corporate-owned device has the serial number {serial[:64]!r}.",
            hint="Serial numbers are case-sensitive; `pippin devices list --search TEXT` finds similar ones, "
            "and `pippin dep sync NAME` brings in devices newly assigned in Apple Business Manager.",
        )
    return device
