"""Profiles: define (``POST /profile``), read (``GET /profile``), assign and remove (``/profile/devices``).

Reference sections 3.5-3.8 and 5. Profiles are immutable (a new 32-hex UUID per define) and belong to the MDM
server that defined them. Validation answers Apple's codes; the whole request is checked before anything
changes. Assignment outcomes per device: ``SUCCESS``, ``NOT_ACCESSIBLE`` (not on this server), ``FAILED``
(then 24 hours of cooldown, reference 8) and ``THROTTLED`` (then ``retry_after_seconds``).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.sim.events import record_event
from pippin.sim.faults import FaultDecision
from pippin.sim.models import SimDevice, SimMDMServer, SimProfile
from pippin.sim.versions import RETRY_AFTER_SINCE, assignment_status_for_version, profile_for_version
from pippin.sim.wire import AppleError, malformed, string_list

MAX_SERIALS = 1000
FAILED_COOLDOWN = timedelta(hours=24)

_STRING_LIMITS: dict[str, tuple[int, str]] = {
    "department": (125, "DEPARTMENT_INVALID"),
    "org_magic": (256, "MAGIC_INVALID"),
    "support_email_address": (250, "SUPPORT_EMAIL_INVALID"),
    "support_phone_number": (50, "SUPPORT_PHONE_INVALID"),
}
_BOOLEANS = (
    "is_supervised",
    "is_mandatory",
    "is_mdm_removable",
    "await_device_configured",
    "auto_advance_setup",
    "is_multi_user",
    "allow_pairing",
    "is_return_to_service",
    "do_not_use_profile_from_backup",
)
_STRING_LISTS = ("anchor_certs", "supervising_host_certs", "skip_setup_items")
_OTHER_STRINGS = ("profile_name", "url", "configuration_web_url", "language", "region")


@dataclass(frozen=True)
class Caller:
    server: SimMDMServer
    version: int
    now: datetime
    faults: FaultDecision


def _check_url(value: str) -> None:
    if not value or len(quote(value, safe=":/?#[]@!$&'()*+,;=%")) > 2000:
        raise AppleError(400, "CONFIG_URL_INVALID")
    if any(ord(char) < 33 or ord(char) == 127 for char in value):
        raise AppleError(400, "CONFIG_URL_INVALID")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port, which is the point
    except ValueError:
        raise AppleError(400, "CONFIG_URL_INVALID") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AppleError(400, "CONFIG_URL_INVALID")


def validate_profile(body: dict[str, Any]) -> dict[str, Any]:
    """The profile to store, or Apple's 400 code for the first thing wrong with it (reference 3.5)."""
    for key in _OTHER_STRINGS + tuple(_STRING_LIMITS):
        if key in body and not isinstance(body[key], str):
            raise malformed()
    for key in _BOOLEANS:
        if key in body and not isinstance(body[key], bool):
            raise malformed()
    for key in _STRING_LISTS:
        value = body.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value) or len(value) > 1000:
            raise malformed()
    if "profile_name" not in body:
        raise AppleError(400, "CONFIG_NAME_REQUIRED")
    if not body["profile_name"].strip() or len(body["profile_name"]) > 125:
        raise AppleError(400, "CONFIG_NAME_INVALID")
    if "url" not in body:
        raise AppleError(400, "CONFIG_URL_REQUIRED")
    _check_url(body["url"])
    if "configuration_web_url" in body:
        _check_url(body["configuration_web_url"])
    for key, (limit, code) in _STRING_LIMITS.items():
        if len(body.get(key, "")) > limit:
            raise AppleError(400, code)
    if body.get("is_mdm_removable", True) is False and body.get("is_supervised") is not True:
        raise AppleError(400, "FLAGS_INVALID")
    language, region = body.get("language"), body.get("region")
    if language is not None and not (2 <= len(language) <= 3 and language.isascii() and language.isalpha()):
        raise AppleError(400, "LOCALE_INVALID")
    if region is not None and not (len(region) == 2 and region.isascii() and region.isalpha() and region.isupper()):
        raise AppleError(400, "LOCALE_INVALID")
    known = (*_OTHER_STRINGS, *_STRING_LIMITS, *_BOOLEANS, *_STRING_LISTS)
    return {key: body[key] for key in known if key in body}


def define_profile(session: Session, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """Store a new immutable profile; assign it to ``devices`` in the same call when given."""
    stored = validate_profile(body)
    serials: list[str] = []
    if body.get("devices") not in (None, []):
        serials = string_list(body, "devices", required_code="DEVICE_ID_REQUIRED", maximum=MAX_SERIALS)
    profile = SimProfile(
        profile_uuid=secrets.token_hex(16).upper(), server_id=caller.server.id, body=stored, created_at=caller.now
    )
    session.add(profile)
    outcome = _assign(session, caller, profile.profile_uuid, serials)
    outcome.pop("retry_after_seconds", None)
    return outcome


def get_profile(session: Session, caller: Caller, profile_uuid: str | None) -> dict[str, Any]:
    if not profile_uuid:
        raise AppleError(400, "PROFILE_UUID_REQUIRED")
    profile = _find_profile(session, caller.server, profile_uuid)
    return profile_for_version({**profile.body, "profile_uuid": profile.profile_uuid}, caller.version)


def assign_profile(session: Session, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """``POST``/``PUT /profile/devices``: at most 1000 serials, a status per serial."""
    profile_uuid = body.get("profile_uuid")
    if profile_uuid is not None and not isinstance(profile_uuid, str):
        raise malformed()
    if not profile_uuid:
        raise AppleError(400, "PROFILE_UUID_REQUIRED")
    serials = string_list(body, "devices", required_code="DEVICE_ID_REQUIRED", maximum=MAX_SERIALS)
    profile = _find_profile(session, caller.server, profile_uuid)
    return _assign(session, caller, profile.profile_uuid, serials)


def remove_profile(session: Session, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """``DELETE /profile/devices``: ``profile_status`` becomes ``removed`` (the old UUID stays, as Apple shows)."""
    if body.get("profile_uuid") is not None and not isinstance(body["profile_uuid"], str):
        raise malformed()
    serials = string_list(body, "devices", required_code="DEVICE_ID_REQUIRED", maximum=MAX_SERIALS)
    devices = _devices_on_server(session, caller.server, serials)
    statuses: dict[str, str] = {}
    for serial in serials:
        device = devices.get(serial)
        if device is None or caller.faults.device_status is not None:
            statuses[serial] = caller.faults.device_status or "NOT_ACCESSIBLE"
            continue
        device.profile_status = "removed"
        record_event(session, server_id=caller.server.id, device=device, op_type="modified", at=caller.now)
        statuses[serial] = "SUCCESS"
    return {"devices": statuses}


def _find_profile(session: Session, server: SimMDMServer, profile_uuid: str) -> SimProfile:
    profile = session.get(SimProfile, profile_uuid.upper().replace("-", "")) if len(profile_uuid) <= 64 else None
    if profile is None or profile.server_id != server.id:
        raise AppleError(400, "PROFILE_NOT_FOUND")
    return profile


def _devices_on_server(session: Session, server: SimMDMServer, serials: list[str]) -> dict[str, SimDevice]:
    if not serials:
        return {}
    query = select(SimDevice).where(SimDevice.serial_number.in_(serials), SimDevice.server_id == server.id)
    return {device.serial_number: device for device in session.scalars(query)}


def _assign(session: Session, caller: Caller, profile_uuid: str, serials: list[str]) -> dict[str, Any]:
    devices = _devices_on_server(session, caller.server, serials)
    statuses: dict[str, str] = {}
    retry_after = 0
    for serial in serials:
        device = devices.get(serial)
        if device is None:
            statuses[serial] = "NOT_ACCESSIBLE"
            continue
        status = _outcome(device, caller)
        if status == "SUCCESS":
            device.profile_uuid = profile_uuid
            device.profile_status = "assigned"
            device.profile_assign_time = caller.now
            device.assignment_blocked_until = None
            device.assignment_block_status = None
            record_event(session, server_id=caller.server.id, device=device, op_type="modified", at=caller.now)
        elif status == "THROTTLED":
            blocked_until = device.assignment_blocked_until or caller.now
            retry_after = max(retry_after, math.ceil((blocked_until - caller.now).total_seconds()))
        statuses[serial] = assignment_status_for_version(status, caller.version)
    outcome: dict[str, Any] = {"profile_uuid": profile_uuid, "devices": statuses}
    if retry_after and caller.version >= RETRY_AFTER_SINCE:
        outcome["retry_after_seconds"] = retry_after
    return outcome


def _outcome(device: SimDevice, caller: Caller) -> str:
    """SUCCESS, or FAILED/THROTTLED: from a cooldown still running, a scripted response, or a drawn rate."""
    now, faults = caller.now, caller.faults
    if device.assignment_blocked_until is not None and device.assignment_blocked_until > now:
        return device.assignment_block_status or "FAILED"
    forced = faults.device_status
    if forced == "NOT_ACCESSIBLE":
        return forced
    draw = faults.rng.random() if forced is None else 0.0
    if forced == "FAILED" or (forced is None and draw < faults.failed_rate):
        device.assignment_blocked_until = now + FAILED_COOLDOWN
        device.assignment_block_status = "FAILED"
        return "FAILED"
    if forced == "THROTTLED" or (forced is None and draw < faults.failed_rate + faults.throttled_rate):
        device.assignment_blocked_until = now + timedelta(seconds=faults.throttle_seconds)
        device.assignment_block_status = "THROTTLED"
        return "THROTTLED"
    return "SUCCESS"
