"""Per-serial device calls: details (``POST /devices``), disown, and activation lock (reference 3.4, 3.9, 3.10)."""

from __future__ import annotations

import string
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.sim.events import device_snapshot, record_event
from pippin.sim.faults import FaultDecision
from pippin.sim.models import SimDevice, SimMDMServer
from pippin.sim.versions import device_for_version
from pippin.sim.wire import AppleError, malformed, optional_string, string_list

#: Apple documents no maximum for details (zentral saw 5000 answered); beyond this the body is refused.
MAX_DETAIL_SERIALS = 10_000
MAX_DISOWN_SERIALS = 1000
MAX_LOST_MESSAGE = 1000
#: Hex of PBKDF2-HMAC-SHA256 over the bypass code: 32 bytes (reference 3.10).
ESCROW_KEY_LENGTH = 64


def _devices_on_server(session: Session, server: SimMDMServer, serials: list[str]) -> dict[str, SimDevice]:
    found: dict[str, SimDevice] = {}
    for start in range(0, len(serials), 500):
        chunk = serials[start : start + 500]
        query = select(SimDevice).where(SimDevice.serial_number.in_(chunk), SimDevice.server_id == server.id)
        found.update((device.serial_number, device) for device in session.scalars(query))
    return found


def device_details(
    session: Session, *, server: SimMDMServer, version: int, faults: FaultDecision, body: dict[str, Any]
) -> dict[str, Any]:
    """Each serial's record with ``response_status``, or just ``NOT_ACCESSIBLE`` when not on this server."""
    serials = string_list(body, "devices", required_code="DEVICE_ID_REQUIRED", maximum=MAX_DETAIL_SERIALS)
    devices = _devices_on_server(session, server, serials)
    answer: dict[str, Any] = {}
    for serial in serials:
        device = devices.get(serial)
        if device is None or faults.device_status is not None:
            answer[serial] = {"response_status": faults.device_status or "NOT_ACCESSIBLE"}
        else:
            answer[serial] = {**device_for_version(device_snapshot(device), version), "response_status": "SUCCESS"}
    return {"devices": answer}


def disown_devices(
    session: Session, *, server: SimMDMServer, now: datetime, faults: FaultDecision, body: dict[str, Any]
) -> dict[str, Any]:
    """Release serials from the server for good: a ``deleted`` event each, profile forgotten."""
    serials = string_list(body, "devices", required_code="DEVICE_ID_REQUIRED", maximum=MAX_DISOWN_SERIALS)
    devices = _devices_on_server(session, server, serials)
    statuses: dict[str, str] = {}
    for serial in serials:
        device = devices.get(serial)
        if device is None or faults.device_status is not None:
            statuses[serial] = faults.device_status or "NOT_ACCESSIBLE"
            continue
        record_event(session, server_id=server.id, device=device, op_type="deleted", at=now)
        device.server_id = None
        device.assign_seq = None
        device.device_assigned_date = None
        device.device_assigned_by = None
        device.profile_uuid = None
        device.profile_status = "empty"
        device.profile_assign_time = None
        device.profile_push_time = None
        statuses[serial] = "SUCCESS"
    return {"devices": statuses}


def activation_lock(session: Session, *, server: SimMDMServer, now: datetime, body: dict[str, Any]) -> dict[str, Any]:
    """Lock one device; Macs are ``DEVICE_NOT_SUPPORTED``, a second lock ``DEVICE_ALREADY_LOCKED``."""
    serial = optional_string(body, "device")
    escrow_key = optional_string(body, "escrow_key")
    lost_message = optional_string(body, "lost_message")
    if not serial:
        raise AppleError(400, "DEVICE_ID_REQUIRED")
    if len(serial) > 64:
        raise malformed()
    if escrow_key is not None and (
        len(escrow_key) != ESCROW_KEY_LENGTH or any(char not in string.hexdigits for char in escrow_key)
    ):
        raise malformed()
    if lost_message is not None and len(lost_message) > MAX_LOST_MESSAGE:
        raise malformed()
    device = session.get(SimDevice, serial)
    if device is None or device.server_id != server.id:
        status = "NOT_ACCESSIBLE"
    elif device.device_family == "Mac":
        status = "DEVICE_NOT_SUPPORTED"
    elif device.activation_locked_at is not None:
        status = "DEVICE_ALREADY_LOCKED"
    else:
        device.activation_locked_at = now
        status = "SUCCESS"
    return {"serial_number": serial, "response_status": status}
