"""The inventory's one paging cursor: opaque to callers, naming the order it belongs to and where a page ended.

A cursor is the (sort value, serial number) of the last row of a page, with the sort and direction it was made
for, base64url-encoded JSON. A cursor from another order, edited, or not made here is refused whole.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from pippin.errors import InvalidInput
from pippin.inventory.schemas import DeviceSort, SortDirection

MAX_CURSOR_CHARS = 400
_SERIAL_MAX = 64


@dataclass(frozen=True)
class Position:
    """Where a page ended: the sort value (a string, or a datetime for ``last_synced``) and the serial."""

    sort: DeviceSort
    direction: SortDirection
    value: str | datetime
    serial: str


def encode_cursor(position: Position) -> str:
    value = position.value.isoformat() if isinstance(position.value, datetime) else position.value
    payload = json.dumps([position.sort.value, position.direction.value, value, position.serial])
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, sort: DeviceSort, direction: SortDirection) -> Position:
    """The position ``cursor`` continues after, for a list in this order; :class:`InvalidInput` otherwise."""
    if not 0 < len(cursor) <= MAX_CURSOR_CHARS:
        raise _bad_cursor()
    try:
        fields = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise _bad_cursor() from None
    if not (isinstance(fields, list) and len(fields) == 4 and all(isinstance(field, str) for field in fields)):
        raise _bad_cursor()
    made_for, made_direction, value, serial = fields
    if made_for != sort.value or made_direction != direction.value:
        raise InvalidInput(
            "The paging cursor belongs to another sort order.", hint="Start again without a cursor, or keep the order."
        )
    if not 0 < len(serial) <= _SERIAL_MAX:
        raise _bad_cursor()
    if sort is DeviceSort.last_synced:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise _bad_cursor() from None
        if moment.tzinfo is None:
            raise _bad_cursor()
        return Position(sort=sort, direction=direction, value=moment, serial=serial)
    return Position(sort=sort, direction=direction, value=value, serial=serial)


def _bad_cursor() -> InvalidInput:
    return InvalidInput("The paging cursor is not one Pippin issued.", hint="Start again without a cursor.")
