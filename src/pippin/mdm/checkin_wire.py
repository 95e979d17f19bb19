"""A check-in message as the device sent it: an XML plist, read defensively into a typed request.

Reference ``apple-mdm-protocol.md`` section 2 and Apple's ``mdm/checkin/*.yaml``. Device endpoints read XML
plists only (DESIGN.md): a binary plist may reference itself and ``plistlib`` builds the cycle (the 2026 updates,
section 1), and an XML plist may declare entities. So a body is refused unless it is a bounded XML document
whose only markup declaration is Apple's plist DOCTYPE, and its top level is a dictionary naming a
``MessageType`` and a device channel ``UDID`` (user enrollments, with ``EnrollmentID``, are for personal devices,
which Pippin does not manage).
"""

from __future__ import annotations

import plistlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from xml.parsers.expat import ExpatError

from pippin.errors import InvalidInput

#: Check-in messages are a few hundred bytes; a bootstrap token adds a few KB.
MAX_CHECKIN_BYTES = 64 * 1024
MAX_UDID_CHARS = 64

_START = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*<(?:\?xml|plist|!DOCTYPE)")
_DECLARATION = re.compile(rb"<!(?!--)")
_PLIST_DOCTYPE = re.compile(rb'<!DOCTYPE\s+plist\s+PUBLIC\s+"[^"<>\[\]]*"\s+"[^"<>\[\]]*"\s*>')


class CheckinRefused(InvalidInput):
    """The body is not a check-in message Pippin reads; nothing was stored."""


class MessageType(StrEnum):
    """The check-in messages Pippin answers (values are Apple's ``MessageType`` strings)."""

    authenticate = "Authenticate"
    token_update = "TokenUpdate"  # noqa: S105 (a message type, not a secret)
    check_out = "CheckOut"
    set_bootstrap_token = "SetBootstrapToken"  # noqa: S105 (a message type, not a secret)
    get_bootstrap_token = "GetBootstrapToken"  # noqa: S105 (a message type, not a secret)
    return_to_service = "ReturnToService"
    declarative_management = "DeclarativeManagement"
    user_authenticate = "UserAuthenticate"
    get_token = "GetToken"  # noqa: S105 (a message type, not a secret)


@dataclass(frozen=True)
class CheckinRequest:
    """One check-in message: its type, the device it names, its other keys, and the body as received."""

    message_type: MessageType
    udid: str
    fields: dict[str, Any]
    raw: bytes

    def text(self, key: str, *, max_chars: int) -> str | None:
        """The string under ``key`` (None when absent); refused when it is not a short printable string."""
        value = self.fields.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not 0 < len(value) <= max_chars or not value.isprintable():
            raise CheckinRefused(f"The check-in's {key[:32]} is not a string of at most {max_chars} characters.")
        return value

    def data(self, key: str, *, max_bytes: int) -> bytes | None:
        value = self.fields.get(key)
        if value is None:
            return None
        if not isinstance(value, bytes) or len(value) > max_bytes:
            raise CheckinRefused(f"The check-in's {key[:32]} is not data of at most {max_bytes} bytes.")
        return value

    def flag(self, key: str) -> bool | None:
        value = self.fields.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise CheckinRefused(f"The check-in's {key[:32]} is not a boolean.")
        return value


def _check_markup(body: bytes) -> None:
    if body.startswith(b"bplist"):
        raise CheckinRefused("Binary property lists are not accepted; the check-in must be an XML plist.")
    if not _START.match(body):
        raise CheckinRefused("The check-in is not an XML property list.")
    declarations = [match.start() for match in _DECLARATION.finditer(body)]
    if len(declarations) > 1 or (declarations and not _PLIST_DOCTYPE.match(body, declarations[0])):
        raise CheckinRefused("The check-in declares entities or other markup; only Apple's plist DOCTYPE is accepted.")


def read_device_plist(body: bytes, *, max_bytes: int = MAX_CHECKIN_BYTES) -> dict[str, Any]:
    """The dictionary of a device's XML plist body (a check-in or a command report, which may be larger: a list of
    apps or certificates); refused otherwise."""
    if not body:
        raise CheckinRefused("The check-in has no body.")
    if len(body) > max_bytes:
        raise CheckinRefused(f"The check-in is larger than {max_bytes // 1024} KiB.")
    _check_markup(body)
    try:
        message = plistlib.loads(body, fmt=plistlib.FMT_XML)
    except (ExpatError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise CheckinRefused("The check-in is not a well-formed XML property list.") from exc
    if not isinstance(message, dict):
        raise CheckinRefused("The check-in's top level is not a dictionary.")
    return message


def read_udid(message: dict[str, Any]) -> str:
    """The device channel UDID a message names."""
    udid = message.get("UDID")
    if udid is None and "EnrollmentID" in message:
        raise CheckinRefused("User enrollments (EnrollmentID) are not managed by this server.")
    if not isinstance(udid, str) or not 0 < len(udid) <= MAX_UDID_CHARS or not udid.isprintable():
        raise CheckinRefused("The message names no device UDID.")
    return udid


def read_checkin(body: bytes) -> CheckinRequest:
    """The check-in message in ``body``; :class:`CheckinRefused` for anything else."""
    message = read_device_plist(body)
    kind = message.get("MessageType")
    if not isinstance(kind, str):
        raise CheckinRefused("The check-in names no MessageType.")
    try:
        message_type = MessageType(kind)
    except ValueError:
        raise CheckinRefused(f"Pippin does not answer check-in messages of type {kind[:40]!r}.") from None
    udid = read_udid(message)
    fields = {key: value for key, value in message.items() if key not in ("MessageType", "UDID")}
    return CheckinRequest(message_type=message_type, udid=udid, fields=fields, raw=body)
