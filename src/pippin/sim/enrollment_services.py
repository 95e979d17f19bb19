"""The DEP endpoints around enrollment beyond devices and profiles (reference 3.11), and their portal side.

- ``GET /os-beta-enrollment/tokens``: the organisation's AppleSeed for IT beta enrollment tokens,
  ``{"betaEnrollmentTokens": [{"token", "title", "os"}]}``, or 403 ``APPLE_SEED_FOR_IT_TURNED_OFF`` once the
  organisation turned beta access off (``PUT /portal/beta-enrollment``).
- ``/account-driven-enrollment/profile``: the MDM server's service discovery URL for account-driven enrollment.
  POST ``{"mdm_service_discovery_url": "https://..."}`` sets it (400 ``MDM_SERVICE_DISCOVERY_URL_REQUIRED`` or
  ``MDM_SERVICE_DISCOVERY_URL_NOT_VALID``, which a URL that is not https is); GET answers
  ``{"mdm_service_discovery_url", "last_updated_timestamp"}`` or 404 ``NOT_FOUND``; DELETE removes it.
- ``GET /device/replacementDetails?device=SERIAL``: ``{"serial_number", "original_device_serial_number",
  "replacement_date"}`` for a replacement device of the caller's server; any other serial answers what Apple
  answers today, 400 ``DEVICE_NOT_FOUND`` (its documentation says 404).

The portal marks a device as a replacement (``POST /portal/devices/{serial}/replacement``): the device then
reports ``is_replacement_device`` and the one it replaced ``released_by_replacement`` (protocol 10), each a
``modified`` event for the MDM server it is assigned to.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from pippin.sim.events import record_event
from pippin.sim.models import SimBetaProgram, SimDevice, SimMDMServer, SimReplacement, SimServiceDiscovery
from pippin.sim.portal_errors import PortalError, invalid, not_found
from pippin.sim.wire import AppleError, iso, malformed

#: The operating systems Apple names in a SeedBuildToken's ``os``.
BETA_OPERATING_SYSTEMS = ("iOS", "OSX", "tvOS", "visionOS", "watchOS", "homePodOS")
MAX_BETA_TOKENS = 100
MAX_TOKEN_FIELD = 255
#: Apple's limit on profile URLs (reference 3.5); the discovery URL is held to the same.
MAX_DISCOVERY_URL = 2000
_DEFAULT_BETA_PROGRAMS = (
    ("iOS", "iOS 27 Developer Beta"),
    ("iOS", "iOS 27 Public Beta"),
    ("OSX", "macOS 27 Developer Beta"),
    ("watchOS", "watchOS 27 Developer Beta"),
    ("tvOS", "tvOS 27 Developer Beta"),
    ("visionOS", "visionOS 27 Developer Beta"),
)


# --- Beta enrollment tokens ------------------------------------------------------------------------------------


def beta_program(session: Session) -> SimBetaProgram:
    """The organisation's beta settings, made on first use with a token per beta Apple runs."""
    program = session.get(SimBetaProgram, 1)
    if program is None:
        tokens = [
            {"token": secrets.token_urlsafe(32), "title": title, "os": os_name}
            for os_name, title in _DEFAULT_BETA_PROGRAMS
        ]
        program = SimBetaProgram(id=1, enabled=True, tokens=tokens)
        session.add(program)
        session.flush()
    return program


def beta_enrollment_tokens(session: Session) -> dict[str, Any]:
    program = beta_program(session)
    if not program.enabled:
        raise AppleError(403, "APPLE_SEED_FOR_IT_TURNED_OFF")
    return {"betaEnrollmentTokens": [dict(token) for token in program.tokens]}


def beta_program_view(program: SimBetaProgram) -> dict[str, Any]:
    return {"enabled": program.enabled, "tokens": [dict(token) for token in program.tokens]}


def set_beta_program(session: Session, *, enabled: bool, tokens: list[dict[str, str]] | None) -> SimBetaProgram:
    """Turn beta access on or off, and replace the tokens when ``tokens`` is given (each checked)."""
    if tokens is not None:
        if len(tokens) > MAX_BETA_TOKENS:
            raise invalid("invalid_field", f"At most {MAX_BETA_TOKENS} beta enrollment tokens.")
        found = [(index, _token_problem(token)) for index, token in enumerate(tokens)]
        problems = [{"index": index, "problem": problem} for index, problem in found if problem]
        if problems:
            raise invalid("invalid_field", "Some beta enrollment tokens are not valid.", problems=problems)
    program = beta_program(session)
    program.enabled = enabled
    if tokens is not None:
        program.tokens = [dict(token) for token in tokens]
    return program


def _token_problem(token: dict[str, str]) -> str | None:
    if set(token) != {"token", "title", "os"}:
        return 'each token is exactly {"token", "title", "os"}'
    if token["os"] not in BETA_OPERATING_SYSTEMS:
        return f"os must be one of {', '.join(BETA_OPERATING_SYSTEMS)}"
    if any(not value.strip() or len(value) > MAX_TOKEN_FIELD for value in (token["token"], token["title"])):
        return f"token and title must be 1 to {MAX_TOKEN_FIELD} characters"
    return None


# --- Account-driven enrollment service discovery ---------------------------------------------------------------


def _discovery_view(row: SimServiceDiscovery) -> dict[str, Any]:
    return {"mdm_service_discovery_url": row.url, "last_updated_timestamp": iso(row.updated_at)}


def get_service_discovery(session: Session, *, server: SimMDMServer) -> dict[str, Any]:
    row = session.get(SimServiceDiscovery, server.id)
    if row is None:
        raise AppleError(404, "NOT_FOUND")
    return _discovery_view(row)


def set_service_discovery(
    session: Session, *, server: SimMDMServer, now: datetime, body: dict[str, Any]
) -> dict[str, Any]:
    """Store the server's discovery URL; answers the stored profile as GET does."""
    url = body.get("mdm_service_discovery_url")
    if url is None or url == "":
        raise AppleError(400, "MDM_SERVICE_DISCOVERY_URL_REQUIRED")
    if not isinstance(url, str):
        raise malformed()
    if not _is_https_url(url):
        raise AppleError(400, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID")
    row = session.get(SimServiceDiscovery, server.id)
    if row is None:
        row = SimServiceDiscovery(server_id=server.id, url=url, updated_at=now)
        session.add(row)
    else:
        row.url, row.updated_at = url, now
    session.flush()
    return _discovery_view(row)


def remove_service_discovery(session: Session, *, server: SimMDMServer) -> dict[str, Any]:
    """Forget the server's discovery URL; removing one that is not set changes nothing and succeeds too."""
    row = session.get(SimServiceDiscovery, server.id)
    if row is not None:
        session.delete(row)
    return {}


def _is_https_url(url: str) -> bool:
    if len(url) > MAX_DISCOVERY_URL or any(char.isspace() or ord(char) < 32 for char in url):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname) and (port is None or 0 < port < 65536)


# --- Replacement devices ----------------------------------------------------------------------------------------


def replacement_details(session: Session, *, server: SimMDMServer, query: dict[str, str]) -> dict[str, Any]:
    serial = query.get("device", "")
    if not serial:
        raise AppleError(400, "DEVICE_ID_REQUIRED")
    device = session.get(SimDevice, serial) if len(serial) <= 64 else None
    replacement = session.get(SimReplacement, serial) if device is not None else None
    if device is None or device.server_id != server.id or replacement is None:
        raise AppleError(400, "DEVICE_NOT_FOUND")
    return {
        "serial_number": device.serial_number,
        "original_device_serial_number": replacement.original_serial_number,
        "replacement_date": replacement.replacement_date.isoformat(),
    }


def mark_replacement(
    session: Session, *, serial_number: str, original_serial_number: str, replacement_date: date, now: datetime
) -> SimReplacement:
    """Record that ``serial_number`` replaced ``original_serial_number`` (which may have left the organisation)."""
    device = session.get(SimDevice, serial_number)
    if device is None:
        raise not_found("device_not_found", f"No device with serial number {serial_number!r} in this organisation.")
    original_serial_number = original_serial_number.strip()
    if not original_serial_number or len(original_serial_number) > 64 or original_serial_number == serial_number:
        raise invalid("invalid_field", "original_serial_number must be another device's serial (1-64 characters).")
    if session.get(SimReplacement, serial_number) is not None:
        raise PortalError(409, "already_replacement", f"{serial_number} is already recorded as a replacement.")
    replacement = SimReplacement(
        serial_number=serial_number, original_serial_number=original_serial_number, replacement_date=replacement_date
    )
    session.add(replacement)
    _set_flag(session, device, "is_replacement_device", now=now)
    original = session.get(SimDevice, original_serial_number)
    if original is not None:
        _set_flag(session, original, "released_by_replacement", now=now)
    session.flush()
    return replacement


def _set_flag(session: Session, device: SimDevice, flag: str, *, now: datetime) -> None:
    device.extra = {**(device.extra or {}), flag: True}  # a new dict, so the JSON column is seen as changed
    if device.server_id is not None:
        record_event(session, server_id=device.server_id, device=device, op_type="modified", at=now)
