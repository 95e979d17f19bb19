"""Fetch (``POST /server/devices``) and sync (``POST /devices/sync``): pages of devices behind cursors.

Reference sections 3.2, 3.3 and 6. Every page costs time proportional to the page, never to the number of
devices: fetch walks ``SimDevice(server_id, assign_seq)`` by keyset, frozen at the fetch's start (only devices
whose ``assign_seq`` is at most the snapshot, i.e. assigned before the fetch began); sync walks the change log
``SimDeviceEvent(server_id, seq)`` after the cursor's position. Both are index range scans.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.sim.cursors import Cursor, decode_cursor, encode_cursor
from pippin.sim.events import device_snapshot
from pippin.sim.models import SimDevice, SimDeviceEvent, SimMDMServer, SimOrganization
from pippin.sim.versions import device_for_version
from pippin.sim.wire import AppleError, iso, malformed

DEFAULT_LIMIT = 100
MAXIMUM_LIMIT = 1000


@dataclass(frozen=True)
class PageRequest:
    """Who asks, as what protocol version, at what simulated time."""

    server: SimMDMServer
    org: SimOrganization
    version: int
    now: datetime


def parse_limit(body: dict[str, Any]) -> int:
    """``limit``: default 100; above 1000 clamped (Apple's behaviour there is undocumented); else malformed."""
    value = body.get("limit")
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise malformed()
    return min(value, MAXIMUM_LIMIT)


def parse_cursor_field(body: dict[str, Any]) -> str | None:
    value = body.get("cursor")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise malformed()
    return value


def fetch_page(session: Session, request: PageRequest, body: dict[str, Any]) -> dict[str, Any]:
    """One page of a full fetch; the last page hands out the sync cursor at the fetch's snapshot."""
    limit = parse_limit(body)
    text = parse_cursor_field(body)
    if text is None:
        snapshot = session.scalar(select(func.max(SimDeviceEvent.seq))) or 0
        cursor = Cursor(request.server.id, "fetch", 0, snapshot, request.now)
    else:
        cursor = decode_cursor(text, secret=request.org.cursor_secret, server_id=request.server.id, now=request.now)
        if cursor.kind == "sync":
            raise AppleError(400, "EXHAUSTED_CURSOR")
    rows = list(
        session.scalars(
            select(SimDevice)
            .where(
                SimDevice.server_id == request.server.id,
                SimDevice.assign_seq > cursor.position,
                SimDevice.assign_seq <= cursor.snapshot,
            )
            .order_by(SimDevice.assign_seq)
            .limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    if more:
        position = rows[-1].assign_seq or cursor.position
        next_cursor = Cursor(request.server.id, "fetch", position, cursor.snapshot, request.now)
    else:
        next_cursor = Cursor(request.server.id, "sync", cursor.snapshot, cursor.snapshot, request.now)
    return {
        "devices": [device_for_version(device_snapshot(device), request.version) for device in rows],
        "cursor": encode_cursor(next_cursor, secret=request.org.cursor_secret),
        "fetched_until": iso(request.now),
        "more_to_follow": more,
    }


def sync_page(
    session: Session, request: PageRequest, body: dict[str, Any], *, repeat_cursor: bool, hide_cooling: bool
) -> dict[str, Any]:
    """Changes after the cursor, oldest first; a serial may appear more than once (reference 3.3).

    ``repeat_cursor`` plays Apple's bug of answering the same cursor with ``more_to_follow: true``
    (reference 8); ``hide_cooling`` leaves out devices cooling down after a FAILED/THROTTLED assignment.
    """
    limit = parse_limit(body)
    text = parse_cursor_field(body)
    if text is None:
        raise AppleError(400, "CURSOR_REQUIRED")
    cursor = decode_cursor(text, secret=request.org.cursor_secret, server_id=request.server.id, now=request.now)
    if cursor.kind != "sync":
        # A fetch still in progress: syncing from it would skip the devices not fetched yet.
        raise AppleError(400, "INVALID_CURSOR")
    events = list(
        session.scalars(
            select(SimDeviceEvent)
            .where(SimDeviceEvent.server_id == request.server.id, SimDeviceEvent.seq > cursor.position)
            .order_by(SimDeviceEvent.seq)
            .limit(limit + 1)
        )
    )
    more = len(events) > limit
    events = events[:limit]
    served = _without_cooling(session, events, request.now) if hide_cooling else events
    devices = [
        device_for_version({**event.snapshot, "op_type": event.op_type, "op_date": iso(event.op_date)}, request.version)
        for event in served
    ]
    if repeat_cursor:
        return {"devices": devices, "cursor": text, "fetched_until": iso(request.now), "more_to_follow": True}
    position = events[-1].seq if events else cursor.position
    next_cursor = Cursor(request.server.id, "sync", position, cursor.snapshot, request.now)
    return {
        "devices": devices,
        "cursor": encode_cursor(next_cursor, secret=request.org.cursor_secret),
        "fetched_until": iso(events[-1].op_date) if events else iso(request.now),
        "more_to_follow": more,
    }


def _without_cooling(session: Session, events: list[SimDeviceEvent], now: datetime) -> list[SimDeviceEvent]:
    serials = {event.serial_number for event in events if event.op_type != "deleted"}
    if not serials:
        return events
    cooling = set(
        session.scalars(
            select(SimDevice.serial_number).where(
                SimDevice.serial_number.in_(serials), SimDevice.assignment_blocked_until > now
            )
        )
    )
    return [event for event in events if event.serial_number not in cooling]
