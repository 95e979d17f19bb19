"""A command as the device reads it from the server, and the shapes of its answers (reference section 3).

The server answers an Idle or a report with ``{CommandUUID, Command: {RequestType, ...}}`` as an XML plist. What
cannot be read as one (not a plist, a binary plist, no CommandUUID) names no command the device could answer, so
the device refuses it and ends the session (:class:`CommandUnreadable`); a readable envelope whose Command is
malformed is answered ``CommandFormatError``, as iOS answers one. Errors a command meets are answered ``Error``
with an ErrorChain of Apple's four keys (``{ErrorCode, ErrorDomain, LocalizedDescription, USEnglishDescription}``).
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from xml.parsers.expat import ExpatError

#: The largest command the device reads (a profile to install fits); the client refuses larger bodies first.
MAX_COMMAND_BYTES = 10 * 1024 * 1024
MAX_COMMAND_UUID_CHARS = 256


class CommandUnreadable(Exception):
    """The server's answer is not a command the device can answer: the session ends."""


class CommandFormatError(Exception):
    """The command's envelope is readable but its Command is not what Apple's schema says."""


@dataclass(frozen=True)
class ErrorEntry:
    code: int
    domain: str
    description: str

    def as_plist(self) -> dict[str, Any]:
        return {
            "ErrorCode": self.code,
            "ErrorDomain": self.domain,
            "LocalizedDescription": self.description,
            "USEnglishDescription": self.description,
        }


class CommandFailed(Exception):
    """The device ran the command and it failed: answered ``Error`` with ``chain`` (outermost error first)."""

    def __init__(self, *chain: ErrorEntry) -> None:
        super().__init__(chain[0].description)
        self.chain = chain


def not_a_valid_request_type(request_type: str) -> CommandFailed:
    """What iOS answers a command it does not know, or one it runs only when supervised and is not (captured
    answers: MCMDMErrorDomain 12021, "“RestartDevice” is not a valid request type.")."""
    return CommandFailed(ErrorEntry(12021, "MCMDMErrorDomain", f"“{request_type[:64]}” is not a valid request type."))


class Aftermath(StrEnum):
    """What the device does once its answer is sent, instead of taking the server's next command."""

    erase = "erase"
    restart = "restart"
    shut_down = "shut_down"
    unenroll = "unenroll"  # the server removed the MDM profile


@dataclass(frozen=True)
class Answer:
    """The report for one command (without the device's UDID) and what follows it."""

    report: dict[str, Any]
    aftermath: Aftermath | None = None
    request_type: str | None = None


@dataclass(frozen=True)
class Command:
    command_uuid: str
    request_type: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def optional(self, key: str, kind: type | tuple[type, ...]) -> Any:
        """The argument ``key`` if given; :class:`CommandFormatError` if it is not of ``kind``."""
        value = self.arguments.get(key)
        if value is not None and (not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
            raise CommandFormatError(f"{self.request_type}.{key} has the wrong type")
        return value

    def required(self, key: str, kind: type | tuple[type, ...]) -> Any:
        value = self.optional(key, kind)
        if value is None:
            raise CommandFormatError(f"{self.request_type} has no {key}")
        return value


def read_envelope(body: bytes) -> tuple[str, object]:
    """The CommandUUID and the raw Command of the server's answer; :class:`CommandUnreadable` if it names none."""
    if len(body) > MAX_COMMAND_BYTES:
        raise CommandUnreadable("the command is larger than a device reads")
    if not body.lstrip().startswith(b"<"):
        raise CommandUnreadable("the server's answer is not an XML plist")
    if b"<!ENTITY" in body:
        raise CommandUnreadable("the server's answer declares XML entities")  # expansion bombs
    try:
        envelope = plistlib.loads(body, fmt=plistlib.FMT_XML)
    except (plistlib.InvalidFileException, ExpatError, ValueError, TypeError, OverflowError, RecursionError):
        raise CommandUnreadable("the server's answer is not an MDM command plist") from None
    if not isinstance(envelope, dict):
        raise CommandUnreadable("the server's answer is not a dictionary")
    uuid = envelope.get("CommandUUID")
    if not isinstance(uuid, str) or not 0 < len(uuid) <= MAX_COMMAND_UUID_CHARS or not uuid.isprintable():
        raise CommandUnreadable("the server's command has no CommandUUID")
    return uuid, envelope.get("Command")


def read_command(command_uuid: str, raw: object) -> Command:
    """The Command dictionary read; :class:`CommandFormatError` when it has no RequestType."""
    if not isinstance(raw, dict):
        raise CommandFormatError("the command has no Command dictionary")
    request_type = raw.get("RequestType")
    if not isinstance(request_type, str) or not request_type:
        raise CommandFormatError("the command has no RequestType")
    arguments = {str(k): v for k, v in raw.items() if k != "RequestType"}
    return Command(command_uuid=command_uuid, request_type=request_type, arguments=arguments)
