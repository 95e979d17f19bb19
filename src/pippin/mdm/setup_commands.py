"""The enrollment-time commands an admin defines per DEP profile: add, list, remove, and what each becomes.

A profile that awaits configuration holds its devices in Setup Assistant until DeviceConfigured
(``mdm/setup_release.py`` sends it). Before that, each device gets its profile's commands, in order:

- ``install_profile``: an InstallProfile with the admin's .mobileconfig, checked when it is added as the catalog
  checks any InstallProfile (``mdm/commands/profile_body.py``), and kept sealed: a Wi-Fi payload carries its
  password.
- ``device_name``: a Settings command with a DeviceName made from a template such as ``iPad-{serial}``, filled in
  with what Pippin knows of the device at its TokenUpdate (:data:`PLACEHOLDERS`). Apple applies a device name on
  supervised devices only, which a profile awaiting configuration is (Apple ignores the wait otherwise).

Changing these commands is Pippin's own business: Apple never sees them, so the profile's revision stays.
"""

from __future__ import annotations

import base64
import binascii
import string
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.crypto.secrets import SecretBox
from pippin.dep.profiles import get_profile
from pippin.errors import InvalidInput, NotFound
from pippin.mdm.command_catalog import build_command
from pippin.mdm.command_queue import QueuedCommand, sealed_body
from pippin.mdm.commands.profile_body import MAX_PROFILE_BYTES, check_profile
from pippin.mdm.commands.schema import CommandRejected
from pippin.mdm.setup_schemas import SetupCommandCreate, SetupCommandRead
from pippin.store.models import MAX_STORED_INTEGER, SetupCommand, SetupCommandKind
from pippin.text import check_text

__all__ = [
    "MAX_SETUP_COMMANDS",
    "PLACEHOLDERS",
    "DeviceNameFacts",
    "add_setup_command",
    "check_name_template",
    "list_setup_commands",
    "remove_setup_command",
    "render_device_name",
    "setup_command_of",
]

#: Commands per profile: each runs while the user waits in Setup Assistant.
MAX_SETUP_COMMANDS = 20
MAX_TEMPLATE_CHARS = 200
#: Apple's DeviceName as Pippin's catalog bounds it.
MAX_DEVICE_NAME_CHARS = 255
_LABEL_CHARS = 255

#: The placeholders a device name template may use, and what each is at the device's TokenUpdate.
PLACEHOLDERS: dict[str, str] = {
    "serial": "the serial number",
    "udid": "the UDID",
    "model": "Apple's model name from the DEP record (e.g. iPhone 15 Pro), else the product type",
    "product": "the product type the device reported (e.g. iPhone16,2)",
    "os_version": "the OS version the device reported",
    "asset_tag": "the asset tag from Apple Business Manager",
    "user": "the username of the device's primary user (user affinity)",
}
_REQUEST_TYPES = {SetupCommandKind.install_profile: "InstallProfile", SetupCommandKind.device_name: "Settings"}


class SetupCommandRefused(InvalidInput):
    """The enrollment-time command cannot be added as given; nothing was stored."""


@dataclass(frozen=True)
class DeviceNameFacts:
    """What Pippin knows of a device at its TokenUpdate; None where it does not (rendered as nothing)."""

    serial: str | None = None
    udid: str | None = None
    model: str | None = None
    product: str | None = None
    os_version: str | None = None
    asset_tag: str | None = None
    user: str | None = None


def check_name_template(template: str) -> str:
    """``template`` checked: single-line text, at most 200 characters, known ``{placeholders}`` only."""
    if not isinstance(template, str):
        raise SetupCommandRefused("A device name template is text.")
    check_text(template, field="The device name template")
    template = template.strip()
    if not template or len(template) > MAX_TEMPLATE_CHARS:
        raise SetupCommandRefused(f"A device name template is 1 to {MAX_TEMPLATE_CHARS} characters.")
    known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        raise SetupCommandRefused(
            "The device name template has an unmatched { or }.",
            hint=f"Write a literal brace twice ({{{{ or }}}}); placeholders are {known}.",
        ) from None
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in PLACEHOLDERS or spec or conversion:
            shown = field[:40] + (f"!{conversion}" if conversion else "") + (f":{spec[:20]}" if spec else "")
            raise SetupCommandRefused(
                f"The device name template uses {{{shown}}}, which is not a placeholder Pippin fills in.",
                hint=f"Use {known}.",
            )
    return template


def _printable(value: str | None) -> str:
    """A device's fact as it may stand in a name: the device told it, so what is not printable is dropped."""
    return "".join(char for char in (value or "") if char.isprintable())


def render_device_name(template: str, facts: DeviceNameFacts) -> str:
    """The name ``template`` gives the device ``facts`` describe; its serial (or UDID) when it comes out empty."""
    values = {name: _printable(getattr(facts, name)) for name in PLACEHOLDERS}
    name = template.format_map(values).strip()[:MAX_DEVICE_NAME_CHARS].strip()
    return name or values["serial"] or values["udid"] or "iPhone"


def _label_of(profile: dict[str, object]) -> str:
    for key in ("PayloadDisplayName", "PayloadIdentifier"):
        value = profile.get(key)
        if isinstance(value, str) and value.strip():
            return _printable(value).strip()[:_LABEL_CHARS] or "profile"
    return "profile"  # pragma: no cover - check_profile requires a PayloadIdentifier


def _payload_bytes(payload: str | bytes | None) -> bytes:
    if payload is None:
        raise SetupCommandRefused("An install_profile command needs the .mobileconfig (payload).")
    if isinstance(payload, bytes):
        data = payload
    else:
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise SetupCommandRefused("The payload is not base64.", hint="Send base64 of the .mobileconfig.") from None
    if len(data) > MAX_PROFILE_BYTES:
        raise SetupCommandRefused(f"The profile is larger than {MAX_PROFILE_BYTES:,} bytes.")
    return data


def _read(command: SetupCommand, position: int) -> SetupCommandRead:
    return SetupCommandRead(
        id=command.id,
        position=position,
        kind=command.kind,
        request_type=_REQUEST_TYPES[command.kind],
        label=command.label,
        name_template=command.name_template,
        created_at=command.created_at,
        created_by=command.created_by,
    )


def _commands_of(session: Session, profile_id: int) -> list[SetupCommand]:
    return list(
        session.scalars(select(SetupCommand).where(SetupCommand.profile_id == profile_id).order_by(SetupCommand.id))
    )


def list_setup_commands(session: Session, *, profile_name: str) -> list[SetupCommandRead]:
    """The profile's enrollment-time commands, in the order they are sent."""
    profile = get_profile(session, name=profile_name)
    return [_read(command, position) for position, command in enumerate(_commands_of(session, profile.id), 1)]


def add_setup_command(
    session: Session,
    *,
    profile_name: str,
    data: SetupCommandCreate,
    payload: bytes | None = None,
    box: SecretBox,
    actor: Actor,
    now: datetime,
) -> SetupCommandRead:
    """Add one command after the profile's others; refused whole (nothing stored) when it cannot be sent.

    ``payload`` gives the .mobileconfig as bytes (the CLI reads a file); ``data.payload`` as base64 (the API).
    """
    profile = get_profile(session, name=profile_name)
    count = session.scalar(select(func.count()).select_from(SetupCommand).where(SetupCommand.profile_id == profile.id))
    if (count or 0) >= MAX_SETUP_COMMANDS:
        raise SetupCommandRefused(
            f"Profile {profile.name!r} has {MAX_SETUP_COMMANDS} enrollment-time commands already, the most it takes.",
            hint="Remove one first, or put several payloads in one profile.",
        )
    command = SetupCommand(profile_id=profile.id, kind=data.kind, created_at=now, created_by=actor.name[:320])
    if data.kind is SetupCommandKind.install_profile:
        if data.template is not None:
            raise SetupCommandRefused("An install_profile command takes a payload, not a template.")
        body = _payload_bytes(payload if payload is not None else data.payload)
        try:
            # As the queue will store it: the command's plist (the profile in base64) must fit a queued command.
            sealed_body(build_command("InstallProfile", {"Payload": body}), box=box)
        except InvalidInput as rejected:
            raise SetupCommandRefused(rejected.message, hint=rejected.hint) from None
        command.label = _label_of(check_profile(body, where="The profile"))
        command.payload_encrypted = box.encrypt(body)
    else:
        if data.payload is not None or payload is not None:
            raise SetupCommandRefused("A device_name command takes a template, not a payload.")
        if data.template is None:
            raise SetupCommandRefused("A device_name command needs a template, e.g. iPad-{serial}.")
        command.name_template = check_name_template(data.template)
        command.label = command.name_template
    session.add(command)
    session.flush()
    audit.record_event(
        session,
        actor=actor,
        action=AuditAction.profile_setup_command_add,
        target=profile.name,
        detail={"id": command.id, "kind": command.kind.value, "label": command.label},
        now=now,
    )
    return _read(command, (count or 0) + 1)


def remove_setup_command(session: Session, *, profile_name: str, command_id: int, actor: Actor, now: datetime) -> None:
    """Remove one of the profile's commands. Devices that got it already keep it; devices enrolling later do not."""
    profile = get_profile(session, name=profile_name)
    valid = isinstance(command_id, int) and 0 < command_id <= MAX_STORED_INTEGER
    command = session.get(SetupCommand, command_id) if valid else None
    if command is None or command.profile_id != profile.id:
        raise NotFound(
            f"Profile {profile.name!r} has no enrollment-time command {str(command_id)[:20]}.",
            hint=f"`pippin profiles setup-commands list {profile.name}` shows their ids.",
        )
    session.delete(command)
    session.flush()
    audit.record_event(
        session,
        actor=actor,
        action=AuditAction.profile_setup_command_remove,
        target=profile.name,
        detail={"id": command_id, "kind": command.kind.value, "label": command.label},
        now=now,
    )


def setup_command_of(command: SetupCommand, facts: DeviceNameFacts, *, box: SecretBox) -> QueuedCommand:
    """The MDM command ``command`` becomes for the device ``facts`` describe; :class:`CommandRejected` if none."""
    if command.kind is SetupCommandKind.install_profile and command.payload_encrypted is not None:
        return build_command("InstallProfile", {"Payload": box.decrypt(command.payload_encrypted)})
    if command.kind is SetupCommandKind.device_name and command.name_template is not None:
        name = render_device_name(command.name_template, facts)
        return build_command("Settings", {"Settings": [{"Item": "DeviceName", "DeviceName": name}]})
    raise CommandRejected("The enrollment-time command is incomplete.")  # pragma: no cover - the columns are set
