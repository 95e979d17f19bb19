"""Recording changes in the change log that ``/devices/sync`` serves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from pippin.sim.models import SimDevice, SimDeviceEvent


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def device_snapshot(device: SimDevice) -> dict[str, Any]:
    """The device as Apple describes it to the MDM server it is assigned to, every version's fields included.

    Fields newer than the caller's protocol version are stripped when served, not here.
    """
    record: dict[str, Any] = {
        "serial_number": device.serial_number,
        "model": device.model,
        "description": device.description,
        "color": device.color,
        "asset_tag": device.asset_tag,
        "os": device.os,
        "device_family": device.device_family,
        "profile_status": device.profile_status,
        "profile_uuid": device.profile_uuid,
        "profile_assign_time": _iso(device.profile_assign_time),
        "profile_push_time": _iso(device.profile_push_time),
        "device_assigned_date": _iso(device.device_assigned_date),
        "device_assigned_by": device.device_assigned_by,
    }
    record.update(device.extra or {})
    return {key: value for key, value in record.items() if value is not None}


def record_event(session: Session, *, server_id: int, device: SimDevice, op_type: str, at: datetime) -> SimDeviceEvent:
    """Append one change to ``server_id``'s log. ``deleted`` events carry only the serial, like Apple's."""
    snapshot = {"serial_number": device.serial_number} if op_type == "deleted" else device_snapshot(device)
    event = SimDeviceEvent(
        server_id=server_id,
        serial_number=device.serial_number,
        op_type=op_type,
        op_date=at,
        snapshot=snapshot,
    )
    session.add(event)
    return event
