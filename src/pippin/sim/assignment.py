"""Assigning devices to MDM servers, the three ways Business Manager offers: serials, order numbers, CSV.

A request is all or nothing: every serial is checked first, and one unknown serial or bad CSV line refuses
the whole request with a problem per line. The change log gets one event per effect, in order:
- assigning emits ``added`` on the new server, or ``modified`` when the device had been on that server
  before: Apple's oddity when devices move back and forth (reference 8), which clients must treat as added;
- moving from server A to B emits ``deleted`` on A first;
- unassigning emits ``deleted``.
Bulk work reads and writes with a few prepared statements, in serial order (the events of one request
share one timestamp), and takes its event sequence numbers up front inside the (serialised) write
transaction, so 100,000 devices move in seconds.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from pippin.sim.events import device_snapshot
from pippin.sim.models import SimBase, SimDevice, SimDeviceEvent, SimMDMServer
from pippin.sim.portal_errors import invalid

MAX_SERIALS_PER_REQUEST = 100_000
SERIAL_PATTERN = re.compile(r"[A-Za-z0-9]{1,64}")
_EVENTS: Table = SimBase.metadata.tables["sim_device_events"]
_CHUNK = 900
# The columns device_snapshot reads that an assignment does not overwrite, plus server_id.
_LOADED_COLUMNS = (
    "serial_number",
    "model",
    "description",
    "color",
    "asset_tag",
    "os",
    "device_family",
    "extra",
    "server_id",
)
_LOAD_QUERY = (
    "SELECT d.serial_number, d.model, d.description, d.color, d.asset_tag, d.os, d.device_family, d.extra, "
    "d.server_id FROM portal_wanted w JOIN sim_devices d ON d.serial_number = w.serial_number ORDER BY w.serial_number"
)


@dataclass(frozen=True)
class AssignmentResult:
    """What one assignment did: newly assigned, moved from another server, already there."""

    assigned: int
    moved: int
    unchanged: int

    def as_dict(self) -> dict[str, int]:
        return {"assigned": self.assigned, "moved": self.moved, "unchanged": self.unchanged}


def check_serials(values: Sequence[Any]) -> list[str]:
    """Validate a JSON list of serials: strings of letters and digits; duplicates are dropped, order kept."""
    if not values:
        raise invalid("no_serials", "Give at least one serial number.")
    if len(values) > MAX_SERIALS_PER_REQUEST:
        raise invalid("too_many_serials", f"At most {MAX_SERIALS_PER_REQUEST:,} serial numbers per request.")
    problems = [
        {"index": index, "problem": "not a serial number (letters and digits, at most 64)"}
        for index, value in enumerate(values)
        if not isinstance(value, str) or not SERIAL_PATTERN.fullmatch(value)
    ]
    if problems:
        raise invalid(
            "invalid_serials",
            f"{len(problems)} entries are not serial numbers; nothing was changed.",
            problems=problems[:100],
        )
    return list(dict.fromkeys(values))


def parse_serial_csv(data: bytes) -> list[str]:
    """Serials from an uploaded CSV: one per line, optional ``serial_number`` header, CRLF and blanks tolerated."""
    if b"\x00" in data:
        raise invalid("invalid_csv", "The file is binary, not a CSV of serial numbers.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid("invalid_csv", "The file is not UTF-8 text; save the CSV as UTF-8.") from None
    serials: list[str] = []
    problems: list[dict[str, Any]] = []
    first_row = True
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        for row in reader:
            line = reader.line_num
            fields = [field.strip() for field in row if field.strip()]
            if not fields:
                continue
            if first_row and len(fields) == 1 and fields[0].lower() in ("serial_number", "serial number", "serial"):
                first_row = False
                continue
            first_row = False
            if len(fields) != 1 or not SERIAL_PATTERN.fullmatch(fields[0]):
                problems.append({"line": line, "value": ",".join(fields)[:80], "problem": "not one serial number"})
            else:
                serials.append(fields[0])
    except csv.Error as exc:
        raise invalid("invalid_csv", f"The CSV cannot be read: {exc}.") from None
    if problems:
        raise invalid(
            "invalid_csv",
            f"{len(problems)} lines are not serial numbers; nothing was assigned.",
            problems=problems[:100],
        )
    return check_serials(serials)


def serials_for_orders(session: Session, order_numbers: Sequence[Any]) -> list[str]:
    """Every device of the given orders; an order with no devices refuses the request."""
    if not order_numbers or len(order_numbers) > 1000:
        raise invalid("invalid_orders", "Give 1 to 1,000 order numbers.")
    if not all(isinstance(order, str) and 0 < len(order) <= 64 for order in order_numbers):
        raise invalid("invalid_orders", "Order numbers must be non-empty strings of at most 64 characters.")
    serials: list[str] = []
    problems = []
    for order in dict.fromkeys(order_numbers):
        found = list(
            session.scalars(
                select(SimDevice.serial_number).where(SimDevice.order_number == order).order_by(SimDevice.serial_number)
            )
        )
        if not found:
            problems.append({"order_number": order, "problem": "no devices in this order"})
        serials.extend(found)
    if problems:
        raise invalid("unknown_orders", "Some order numbers have no devices; nothing was assigned.", problems=problems)
    return check_serials(serials)


def assign_devices(
    session: Session, *, server: SimMDMServer, serials: Sequence[str], assigned_by: str, now: datetime
) -> AssignmentResult:
    """Assign ``serials`` (already checked) to ``server``, all or nothing, emitting the events above."""
    devices = _load(session, serials)
    been_here = _serials_with_history(
        session, server.id, [d.serial_number for d in devices if d.server_id != server.id]
    )
    seq = _next_seq(session)
    at = _stored(session, now)
    events: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    assigned = moved = unchanged = 0
    for device in devices:
        if device.server_id == server.id:
            unchanged += 1
            continue
        if device.server_id is not None:
            events.append(_event(seq, device.server_id, device, "deleted", at))
            seq, moved = seq + 1, moved + 1
        else:
            assigned += 1
        device.server_id, device.assign_seq = server.id, seq
        device.device_assigned_date, device.device_assigned_by = now, assigned_by
        device.profile_uuid, device.profile_status = None, "empty"
        device.profile_assign_time = device.profile_push_time = device.assignment_blocked_until = None
        op_type = "modified" if device.serial_number in been_here else "added"
        events.append(_event(seq, server.id, device, op_type, at))
        updates.append(_assignment_columns(device, at))
        seq += 1
    _write(session, events, updates)
    return AssignmentResult(assigned=assigned, moved=moved, unchanged=unchanged)


def unassign_devices(session: Session, *, serials: Sequence[str], now: datetime) -> int:
    """Release ``serials`` from their servers (``deleted`` events); returns how many were assigned."""
    devices = _load(session, serials)
    seq = _next_seq(session)
    at = _stored(session, now)
    events: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    for device in devices:
        if device.server_id is None:
            continue
        events.append(_event(seq, device.server_id, device, "deleted", at))
        seq += 1
        device.server_id = device.assign_seq = None
        device.device_assigned_date = device.device_assigned_by = None
        device.profile_uuid, device.profile_status = None, "empty"
        device.profile_assign_time = device.profile_push_time = device.assignment_blocked_until = None
        updates.append(_assignment_columns(device, None))
    _write(session, events, updates)
    return len(updates)


def _load(session: Session, serials: Sequence[str]) -> list[SimDevice]:
    """Plain copies of the devices (not ORM-tracked), in serial order; any unknown serial refuses the request.

    Serial order makes every later write sequential: device rows by primary key, and the new events and
    ``assign_seq`` values in step with them. One request's changes share one timestamp, so Apple's
    "chronological" order among them is free to choose.

    They are namespaces holding the columns ``device_snapshot`` reads (the assignment columns are set by the
    caller before a snapshot is taken), typed as SimDevice for it: building and tracking 100,000 ORM
    objects would cost more than the whole assignment.
    """
    if not serials:
        return []
    found: dict[str, SimDevice] = {}
    connection = session.connection()
    # One join against a scratch table of the wanted serials, read as plain tuples: at 100,000 serials this
    # is several times faster than IN-lists through the ORM's row processing.
    connection.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS portal_wanted (serial_number TEXT PRIMARY KEY)")
    connection.exec_driver_sql("DELETE FROM portal_wanted")
    connection.exec_driver_sql("INSERT OR IGNORE INTO portal_wanted VALUES (?)", [(serial,) for serial in serials])
    rows = connection.exec_driver_sql(_LOAD_QUERY).fetchall()
    connection.exec_driver_sql("DELETE FROM portal_wanted")
    for row in rows:
        values = dict(zip(_LOADED_COLUMNS, row, strict=True))
        values["extra"] = json.loads(values["extra"]) if values["extra"] else {}
        found[values["serial_number"]] = cast(SimDevice, SimpleNamespace(**values))
    missing = [serial for serial in serials if serial not in found]
    if missing:
        problems = [
            {"serial_number": serial, "problem": "no such device in this organisation"} for serial in missing[:100]
        ]
        raise invalid(
            "unknown_serials",
            f"{len(missing)} serial numbers are not in this organisation; nothing was changed.",
            problems=problems,
        )
    return list(found.values())


def _serials_with_history(session: Session, server_id: int, serials: list[str]) -> set[str]:
    seen: set[str] = set()
    for chunk in _chunks(serials):
        seen.update(
            session.scalars(
                select(SimDeviceEvent.serial_number)
                .where(SimDeviceEvent.server_id == server_id, SimDeviceEvent.serial_number.in_(chunk))
                .distinct()
            )
        )
    return seen


def _next_seq(session: Session) -> int:
    # Safe without a race: the simulator's write transactions are BEGIN IMMEDIATE, so no one else writes now.
    return (session.scalar(select(func.max(SimDeviceEvent.seq))) or 0) + 1


def _event(seq: int, server_id: int, device: SimDevice, op_type: str, at: str) -> tuple[Any, ...]:
    snapshot = {"serial_number": device.serial_number} if op_type == "deleted" else device_snapshot(device)
    return (seq, server_id, device.serial_number, op_type, at, json.dumps(snapshot))


def _assignment_columns(device: SimDevice, at: str | None) -> tuple[Any, ...]:
    return (device.server_id, device.assign_seq, at, device.device_assigned_by, device.serial_number)


def _write(session: Session, events: list[tuple[Any, ...]], updates: list[tuple[Any, ...]]) -> None:
    """Two prepared statements run with executemany: bulk work without per-row ORM or type processing.

    Values arrive already in the database's form (JSON text, SimDateTime's stored form via ``_stored``).
    """
    connection = session.connection()
    if events:
        connection.exec_driver_sql(
            "INSERT INTO sim_device_events (seq, server_id, serial_number, op_type, op_date, snapshot) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            events,
        )
    if updates:
        connection.exec_driver_sql(
            "UPDATE sim_devices SET server_id = ?, assign_seq = ?, device_assigned_date = ?, device_assigned_by = ?, "
            "profile_uuid = NULL, profile_status = 'empty', profile_assign_time = NULL, profile_push_time = NULL, "
            "assignment_blocked_until = NULL, assignment_block_status = NULL WHERE serial_number = ?",
            updates,
        )


def _stored(session: Session, moment: datetime) -> str:
    """``moment`` as SimDateTime stores it, computed once per request rather than once per row."""
    column_type = _EVENTS.c.op_date.type
    processor = column_type.bind_processor(session.get_bind().dialect)
    stored = processor(moment) if processor else moment
    return str(stored)


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
