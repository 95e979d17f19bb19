"""Building an MDM command from an admin's parameters, checked before it is queued.

``build_command(request_type, payload, device=...)`` takes a request type Pippin models (:func:`request_types`)
and its parameters under Apple's key names (``{"Message": ..., "PhoneNumber": ...}`` for DeviceLock), or ``Raw``
with Apple's whole Command dict (``{"RequestType": ..., ...}``) for any other iOS command Apple defines. Either
way the command is checked against Pippin's description of Apple's schemas (``mdm/commands/``): the keys Apple
defines, their types and allowed values, Pippin's size bounds, and, where the device's facts are known, its iOS
version and supervision. Data keys take bytes, or base64 text from callers that speak JSON.

Pure building and checking: no database, no network. The queue stores what this returns.
"""

from __future__ import annotations

import plistlib
from collections.abc import Mapping

from pippin.mdm.command_queue import QueuedCommand
from pippin.mdm.commands.device_commands import MODELLED
from pippin.mdm.commands.device_queries import INVENTORY_QUERIES
from pippin.mdm.commands.other_commands import MACOS_ONLY, OTHERS
from pippin.mdm.commands.schema import CommandRejected, CommandSpec, DeviceFacts, check_available, check_device
from pippin.mdm.commands.values import check_keys

__all__ = [
    "MAX_COMMAND_BYTES",
    "RAW",
    "CommandRejected",
    "DeviceFacts",
    "QueuedCommand",
    "build_command",
    "request_types",
]

#: The request type that sends Apple's Command dict as given, for what Pippin does not model yet.
RAW = "Raw"
#: Pippin's bound for one command as the device receives it (an XML plist): each is stored per device.
MAX_COMMAND_BYTES = 2 * 1024 * 1024

_MODELLED = {spec.request_type: spec for spec in MODELLED}
_ALL = {**_MODELLED, **{spec.request_type: spec for spec in OTHERS}}


def request_types() -> list[str]:
    """The request types :func:`build_command` takes: those Pippin models, then ``Raw``."""
    return [*sorted(_MODELLED), RAW]


def raw_request_types() -> list[str]:
    """The iOS request types a ``Raw`` command may carry."""
    return sorted(name for name, spec in _ALL.items() if spec.available.device_channel)


def _spec(request_type: object, table: Mapping[str, CommandSpec]) -> CommandSpec:
    if not isinstance(request_type, str) or not request_type:
        raise CommandRejected("The command has no RequestType.")
    spec = table.get(request_type)
    if spec is not None:
        return spec
    shown = request_type[:64]
    if request_type in MACOS_ONLY:
        raise CommandRejected(
            f"{shown} is not available on iOS or iPadOS.", hint="Apple defines it for other platforms only."
        )
    if table is _MODELLED and request_type in _ALL:
        raise CommandRejected(f"Pippin does not model {shown}.", hint=f"Send it as {RAW} with Apple's Command keys.")
    raise CommandRejected(
        f"{shown!r} is not a command Apple defines for iOS.",
        hint="Check its spelling: request types are case-sensitive.",
    )


def _parameters(request_type: str, payload: Mapping[str, object]) -> dict[object, object]:
    if not isinstance(payload, Mapping):
        raise CommandRejected(f"The parameters of {request_type} must be a dictionary.")
    given: dict[object, object] = {name: value for name, value in payload.items()}
    if given.get("RequestType", request_type) != request_type:
        raise CommandRejected(f"The parameters of {request_type} name another RequestType.")
    given.pop("RequestType", None)
    return given


def build_command(
    request_type: str, payload: Mapping[str, object], *, device: DeviceFacts | None = None
) -> QueuedCommand:
    """The command ``request_type`` with ``payload``, checked for ``device`` (None: for any iOS device).

    Raises :class:`CommandRejected`, naming the key and the reason, for anything Apple's protocol does not allow.
    """
    if request_type == RAW:
        if not isinstance(payload, Mapping):
            raise CommandRejected(f"A {RAW} command must be Apple's Command dictionary.")
        spec = _spec(payload.get("RequestType"), _ALL)
        given = _parameters(spec.request_type, payload)
    else:
        spec = _spec(request_type, _MODELLED)
        given = _parameters(spec.request_type, payload)
        if spec.request_type == "DeviceInformation" and "Queries" not in given:
            given["Queries"] = list(INVENTORY_QUERIES)
    check_device(device)
    check_available(spec.available, spec.request_type, device)
    checked = check_keys(given, spec.keys, spec.request_type, device)
    if spec.extra_check is not None:
        spec.extra_check(checked, device)
    command: dict[str, object] = {"RequestType": spec.request_type, **checked}
    if len(plistlib.dumps(command, fmt=plistlib.FMT_XML)) > MAX_COMMAND_BYTES:
        raise CommandRejected(f"{spec.request_type} is larger than Pippin sends ({MAX_COMMAND_BYTES} bytes).")
    return QueuedCommand(request_type=spec.request_type, command=command, destructive=spec.destructive)
