"""The ServerURL's wire: a device's report read into a typed request, and a command written as the device reads it.

Reference ``apple-mdm-protocol.md`` section 3. A report is an XML plist (read as check-ins are,
``mdm/checkin_wire.py``: no binary plists, no entities) with the device's ``UDID``, a ``Status`` (``Idle`` asks for a
command; ``Acknowledged``, ``Error``, ``CommandFormatError`` and ``NotNow`` answer one, naming its ``CommandUUID``)
and the command's answer keys at its top level. Answers may be larger than check-ins (a list of apps, of
certificates), so their bound is larger too, and their nesting is bounded before anything walks them.
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pippin.crypto.secrets import SecretBox
from pippin.mdm.checkin_wire import CheckinRefused, read_device_plist, read_udid

#: The largest report read: an InstalledApplicationList or CertificateList of a full device (a few MiB) fits; the
#: device app refuses anything past its own larger limit before reading it (``device/app.py``).
MAX_REPORT_BYTES = 4 * 1024 * 1024
#: Apple's deepest answers (a ProfileList's payload contents) nest about ten levels.
MAX_REPORT_DEPTH = 32
MAX_COMMAND_UUID_CHARS = 64
#: What an ErrorChain keeps in the clear (the raw answer keeps all of it, sealed).
MAX_ERROR_CHAIN = 16
_MAX_ERROR_TEXT = 1000
#: The content type of a command sent to the device.
COMMAND_CONTENT_TYPE = "application/xml"


class ReportStatus(StrEnum):
    """Apple's ``Status`` values of a report."""

    idle = "Idle"
    acknowledged = "Acknowledged"
    error = "Error"
    command_format_error = "CommandFormatError"
    not_now = "NotNow"


@dataclass(frozen=True)
class CommandReport:
    """One report at the ServerURL: who sent it, its status, the command it answers, and the body as received."""

    udid: str
    status: ReportStatus
    #: ``None`` for Idle.
    command_uuid: str | None
    #: The ErrorChain, each entry's documented keys only, strings clipped (``None`` when there is none).
    error_chain: list[dict[str, Any]] | None
    #: The whole report as read.
    fields: dict[str, Any]
    raw: bytes


def _check_depth(value: object) -> None:
    """Refuse a report nested deeper than :data:`MAX_REPORT_DEPTH`, without recursion (a hostile body may nest
    hundreds of thousands of levels)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_REPORT_DEPTH:
            raise CheckinRefused(f"The report nests deeper than {MAX_REPORT_DEPTH} levels.")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _error_chain(value: object) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise CheckinRefused("The report's ErrorChain is not an array of dictionaries.")
    chain: list[dict[str, Any]] = []
    for entry in value[:MAX_ERROR_CHAIN]:
        kept: dict[str, Any] = {}
        code = entry.get("ErrorCode")
        if isinstance(code, int) and not isinstance(code, bool) and -(2**63) <= code < 2**63:
            kept["ErrorCode"] = code
        for key in ("ErrorDomain", "LocalizedDescription", "USEnglishDescription"):
            text = entry.get(key)
            if isinstance(text, str):
                kept[key] = text[:_MAX_ERROR_TEXT]
        chain.append(kept)
    return chain


def _command_uuid(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_COMMAND_UUID_CHARS or not value.isprintable():
        raise CheckinRefused("The report names no CommandUUID of at most 64 printable characters.")
    return value


def read_command_report(body: bytes) -> CommandReport:
    """The report in ``body``; :class:`CheckinRefused` (400, nothing stored) for anything else."""
    message = read_device_plist(body, max_bytes=MAX_REPORT_BYTES)
    _check_depth(message)
    udid = read_udid(message)
    status = message.get("Status")
    if not isinstance(status, str) or not status:
        raise CheckinRefused("The report has no Status.")
    try:
        kind = ReportStatus(status)
    except ValueError:
        raise CheckinRefused(f"The report's Status {status[:40]!r} is not one of Apple's.") from None
    command_uuid = None if kind is ReportStatus.idle else _command_uuid(message.get("CommandUUID"))
    chain = _error_chain(message.get("ErrorChain"))
    return CommandReport(udid=udid, status=kind, command_uuid=command_uuid, error_chain=chain, fields=message, raw=body)


def command_plist(command_uuid: str, body_encrypted: bytes, *, box: SecretBox) -> bytes:
    """The command as the device reads it: ``{CommandUUID, Command: {RequestType, ...}}``, an XML plist."""
    command = plistlib.loads(box.decrypt(body_encrypted), fmt=plistlib.FMT_XML)
    return plistlib.dumps({"CommandUUID": command_uuid, "Command": command}, fmt=plistlib.FMT_XML, sort_keys=False)
