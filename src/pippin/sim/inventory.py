"""The organisation's devices as Business Manager holds them: realistic generation, listing, attribute edits.

Generated devices look like what Apple reports for corporate iPhones and iPads (reference 4): 10-character
serials (12 for pre-2021 models), marketing model names, reseller-style descriptions, order numbers, and the
protocol-10 identifiers (EID, IMEI, MEID, MAC addresses) in ``extra``. Creation is one bulk insert, so
hundreds of thousands of devices take seconds.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from pippin.sim.events import record_event
from pippin.sim.models import SimBase, SimDevice, SimMDMServer
from pippin.sim.portal_errors import invalid, not_found

#: One portal call creates at most this many devices; call again for more.
MAX_DEVICES_PER_CALL = 100_000
MAX_PAGE_SIZE = 1000
DEVICES: Table = SimBase.metadata.tables["sim_devices"]
SERIAL_ALPHABET = "0123456789CDFGHJKLMNPQRTVWXY"  # no vowels or look-alikes, as in Apple's randomised serials
_COUNTRIES = ("SWE", "USA", "GBR", "DEU", "FRA", "NLD", "NOR", "DNK", "FIN")


_PHONE = ("128GB", "256GB", "512GB")
_PRO = ("128GB", "256GB", "512GB", "1TB")
_TABLET = ("64GB", "256GB")


@dataclass(frozen=True)
class Model:
    """One entry of the catalogue: what Apple calls it, how resellers abbreviate it, what it comes in."""

    name: str
    family: str
    short: str
    colors: tuple[str, ...]
    capacities: tuple[str, ...]
    serial_length: int = 10
    cellular_share: float = 1.0  # iPhones always; iPads sometimes


CATALOGUE: tuple[Model, ...] = (
    Model("iPhone 16 Pro", "iPhone", "IPHONE 16 PRO", ("BLACK TITANIUM", "WHITE TITANIUM", "DESERT TITANIUM"), _PRO),
    Model("iPhone 16", "iPhone", "IPHONE 16", ("BLACK", "WHITE", "PINK", "TEAL", "ULTRAMARINE"), _PHONE),
    Model("iPhone 15 Pro", "iPhone", "IPHONE 15 PRO", ("BLACK TITANIUM", "BLUE TITANIUM", "NATURAL TITANIUM"), _PRO),
    Model("iPhone 15", "iPhone", "IPHONE 15", ("BLACK", "BLUE", "GREEN", "YELLOW", "PINK"), _PHONE),
    Model("iPhone 14", "iPhone", "IPHONE 14", ("MIDNIGHT", "STARLIGHT", "BLUE", "PURPLE", "RED"), _PHONE),
    Model("iPhone 13", "iPhone", "IPHONE 13", ("MIDNIGHT", "STARLIGHT", "BLUE", "PINK", "GREEN"), _PHONE),
    Model("iPhone SE (3rd generation)", "iPhone", "IPHONE SE 3", ("MIDNIGHT", "STARLIGHT", "RED"), ("64GB", "128GB")),
    Model("iPad Air (5th generation)", "iPad", "IPAD AIR 5", ("SPACE GRAY", "STARLIGHT", "PURPLE"), _TABLET, 10, 0.4),
    Model("iPad (10th generation)", "iPad", "IPAD 10", ("SILVER", "BLUE", "PINK", "YELLOW"), _TABLET, 10, 0.3),
    Model("iPad mini (6th generation)", "iPad", "IPAD MINI 6", ("SPACE GRAY", "PINK", "STARLIGHT"), _TABLET, 10, 0.5),
    Model("iPad Pro 11-inch (4th generation)", "iPad", "IPAD PRO 11 4", ("SPACE GRAY", "SILVER"), _PRO, 10, 0.5),
    Model("iPad (7th generation)", "iPad", "IPAD 7", ("SPACE GRAY", "SILVER", "GOLD"), ("32GB", "128GB"), 12, 0.2),
)

FAMILIES = ("iPhone", "iPad")
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_OS_FOR_FAMILY = {"iPhone": "iOS", "iPad": "iPadOS"}


def generate_devices(
    rng: random.Random, *, count: int, now: datetime, order_number: str | None = None, family: str | None = None
) -> list[dict[str, Any]]:
    """``count`` new device rows (not yet stored). Without ``order_number`` they arrive in orders of 5-500."""
    if family is not None and family not in FAMILIES:
        raise invalid("invalid_field", f"family must be one of {', '.join(FAMILIES)}.")
    models = [model for model in CATALOGUE if family is None or model.family == family]
    rows: list[dict[str, Any]] = []
    order, order_left, country = order_number, 0, rng.choice(_COUNTRIES)
    for _ in range(count):
        if order_number is None and order_left == 0:
            order, order_left, country = f"W{rng.randrange(10**8, 10**9)}", rng.randint(5, 500), rng.choice(_COUNTRIES)
        order_left -= 1
        model = rng.choice(models)
        color, capacity = rng.choice(model.colors), rng.choice(model.capacities)
        cellular = rng.random() < model.cellular_share
        connectivity = "" if model.family == "iPhone" else (" WI-FI + CELLULAR" if cellular else " WI-FI")
        rows.append(
            {
                "serial_number": "".join(rng.choices(SERIAL_ALPHABET, k=model.serial_length)),
                "model": model.name,
                "description": f"{model.short}{connectivity} {color} {capacity}-{country}",
                "color": color,
                "device_family": model.family,
                "os": _OS_FOR_FAMILY[model.family],
                "order_number": order,
                "asset_tag": None,
                "extra": _identifiers(rng, cellular=cellular, dual_sim=model.family == "iPhone"),
                "created_at": now,
                "profile_status": "empty",
            }
        )
    return rows


def create_devices(
    session: Session,
    rng: random.Random,
    *,
    count: int,
    now: datetime,
    order_number: str | None = None,
    family: str | None = None,
) -> list[str]:
    """Generate and store ``count`` unassigned devices in one bulk insert; returns their serials."""
    if not 1 <= count <= MAX_DEVICES_PER_CALL:
        raise invalid("invalid_count", f"count must be 1 to {MAX_DEVICES_PER_CALL:,}; call again for more devices.")
    rows = generate_devices(rng, count=count, now=now, order_number=order_number, family=family)
    _make_serials_unique(session, rng, rows)
    _insert_rows(session, rows, now=now)
    return [row["serial_number"] for row in rows]


_INSERTED = (
    "serial_number", "model", "description", "color", "device_family", "os", "order_number", "asset_tag", "extra",
    "created_at", "profile_status",
)  # fmt: skip
_INSERT = (
    "INSERT INTO sim_devices (serial_number, model, description, color, device_family, os, order_number, asset_tag, "
    "extra, created_at, profile_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _insert_rows(session: Session, rows: list[dict[str, Any]], *, now: datetime) -> None:
    """One prepared INSERT run with executemany, values already in stored form (JSON text, stored time).

    Going through SQLAlchemy's per-row type processing costs more than the database's own work at this size.
    """
    processor = DEVICES.c.created_at.type.bind_processor(session.get_bind().dialect)
    created_at = processor(now) if processor else now
    values = [
        (*(row[name] for name in _INSERTED[:8]), json.dumps(row["extra"]), created_at, row["profile_status"])
        # In serial order, the primary key's B-tree grows at its end instead of splitting pages everywhere.
        for row in sorted(rows, key=lambda row: row["serial_number"])
    ]
    session.connection().exec_driver_sql(_INSERT, values)


def _make_serials_unique(session: Session, rng: random.Random, rows: list[dict[str, Any]]) -> None:
    """Regenerate the (astronomically rare) serials that repeat within the batch or exist already."""
    while True:
        seen: set[str] = set()
        taken = _existing_serials(session, [row["serial_number"] for row in rows])
        clashes = 0
        for row in rows:
            serial = row["serial_number"]
            if serial in seen or serial in taken:
                row["serial_number"] = "".join(rng.choices(SERIAL_ALPHABET, k=len(serial)))
                clashes += 1
            seen.add(row["serial_number"])
        if clashes == 0:
            return


def _existing_serials(session: Session, serials: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(serials), 900):
        chunk = serials[start : start + 900]
        found.update(session.scalars(select(SimDevice.serial_number).where(SimDevice.serial_number.in_(chunk))))
    return found


def _identifiers(rng: random.Random, *, cellular: bool, dual_sim: bool) -> dict[str, Any]:
    extra: dict[str, Any] = {"wifi_mac_address": _mac(rng), "bluetooth_mac_address": _mac(rng)}
    if cellular:
        imeis = [_imei(rng) for _ in range(2 if dual_sim else 1)]
        extra["imei"] = imeis
        extra["meid"] = [imeis[0][:14]]
        extra["eid"] = f"{rng.randrange(10**32):032d}"
    return extra


def _mac(rng: random.Random) -> str:
    return rng.getrandbits(48).to_bytes(6, "big").hex(":")


def _imei(rng: random.Random) -> str:
    """A 15-digit IMEI with a valid Luhn check digit, so clients that validate it accept it."""
    body = f"35{rng.randrange(10**12):012d}"
    digits = [int(char) for char in body]
    # Luhn, from the right: every other digit (starting with the last) doubled, its digits summed.
    total = sum(_LUHN_DOUBLED[digit] for digit in digits[-1::-2]) + sum(digits[-2::-2])
    return body + str((10 - total % 10) % 10)


def list_devices(
    session: Session,
    *,
    server: SimMDMServer | None = None,
    unassigned: bool = False,
    order_number: str | None = None,
    serial_number: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of devices in serial order, with ``next_cursor`` for the page after (keyset paging)."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise invalid("invalid_limit", f"limit must be 1 to {MAX_PAGE_SIZE}.")
    conditions = []
    if server is not None:
        conditions.append(SimDevice.server_id == server.id)
    if unassigned:
        conditions.append(SimDevice.server_id.is_(None))
    if order_number:
        conditions.append(SimDevice.order_number == order_number)
    if serial_number:
        conditions.append(SimDevice.serial_number == serial_number)
    total = session.scalar(select(func.count()).select_from(SimDevice).where(*conditions)) or 0
    query = select(SimDevice, SimMDMServer.server_uuid).outerjoin(SimMDMServer, SimDevice.server_id == SimMDMServer.id)
    if cursor:
        query = query.where(SimDevice.serial_number > _decode_cursor(cursor))
    rows = session.execute(query.where(*conditions).order_by(SimDevice.serial_number).limit(limit + 1)).all()
    devices = [device_view(device, server_uuid=uuid) for device, uuid in rows[:limit]]
    next_cursor = _encode_cursor(rows[limit - 1][0].serial_number) if len(rows) > limit else None
    return {"devices": devices, "total": total, "next_cursor": next_cursor}


def device_view(device: SimDevice, *, server_uuid: str | None) -> dict[str, Any]:
    """A device as the portal shows it (a superset of what the DEP API reports)."""

    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")

    return {
        "serial_number": device.serial_number,
        "model": device.model,
        "description": device.description,
        "color": device.color,
        "device_family": device.device_family,
        "os": device.os,
        "order_number": device.order_number,
        "asset_tag": device.asset_tag,
        "server_uuid": server_uuid,
        "device_assigned_date": iso(device.device_assigned_date),
        "device_assigned_by": device.device_assigned_by,
        "profile_uuid": device.profile_uuid,
        "profile_status": device.profile_status,
        "profile_assign_time": iso(device.profile_assign_time),
        "profile_push_time": iso(device.profile_push_time),
        "extra": device.extra,
        "created_at": iso(device.created_at),
    }


def get_device(session: Session, *, serial_number: str) -> SimDevice:
    device = session.get(SimDevice, serial_number)
    if device is None:
        raise not_found("device_not_found", f"No device with serial number {serial_number!r} in this organisation.")
    return device


def update_device(session: Session, *, serial_number: str, changes: dict[str, str | None], now: datetime) -> SimDevice:
    """Change a device's attributes; the server it is assigned to sees a ``modified`` event (reference 4)."""
    device = get_device(session, serial_number=serial_number)
    changed = False
    for field, value in changes.items():
        if getattr(device, field) != value:
            setattr(device, field, value)
            changed = True
    if changed and device.server_id is not None:
        record_event(session, server_id=device.server_id, device=device, op_type="modified", at=now)
    return device


def _encode_cursor(serial: str) -> str:
    return base64.urlsafe_b64encode(serial.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        serial = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        serial = ""
    if not serial:
        raise invalid("invalid_cursor", "cursor is not one this portal returned; start again without it.")
    return serial
