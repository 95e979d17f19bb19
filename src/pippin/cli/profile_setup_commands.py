"""`pippin profiles setup-commands`: the enrollment-time commands of a profile that awaits configuration.

Each command calls :mod:`pippin.mdm.setup_commands` in one transaction; what devices then get, and when, is
``mdm/setup_release.py``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pippin.cli.audit import cli_actor
from pippin.cli.context import cli_context
from pippin.cli.files import shown_path
from pippin.cli.output import cell, print_json, stdout
from pippin.errors import InvalidInput
from pippin.mdm import setup_commands as setup_service
from pippin.mdm.commands.profile_body import MAX_PROFILE_BYTES
from pippin.mdm.setup_schemas import SetupCommandCreate
from pippin.store.db import read_transaction, transaction
from pippin.store.models import SetupCommandKind, utcnow

JSONOption = Annotated[bool, typer.Option("--json", help="Print JSON with the REST API's keys.")]

app = typer.Typer(
    help="Enrollment-time commands: what a device of the profile gets in Setup Assistant before DeviceConfigured "
    "releases it (profiles that await configuration).",
    no_args_is_help=True,
)
_PLACEHOLDERS = ", ".join("{" + name + "}" for name in setup_service.PLACEHOLDERS)


def _read_profile_file(path: Path) -> bytes:
    """The .mobileconfig at ``path``, bounded; the service checks it is a profile."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PROFILE_BYTES + 1)
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not a possible file name"
        raise InvalidInput(f"Cannot read {shown_path(path)}: {reason}.") from None
    if len(data) > MAX_PROFILE_BYTES:
        raise InvalidInput(f"{shown_path(path)} is larger than {MAX_PROFILE_BYTES:,} bytes, more than a profile.")
    return data


@app.command("list")
def list_setup_commands(
    ctx: typer.Context,
    profile: Annotated[str, typer.Argument(help="The enrollment profile.")],
    json_output: JSONOption = False,
) -> None:
    """List the profile's enrollment-time commands, in the order devices get them."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        found = setup_service.list_setup_commands(session, profile_name=profile)
    if json_output:
        print_json([command.model_dump(mode="json") for command in found])
        return
    if not found:
        stdout.print(
            f"{profile!r} has no enrollment-time commands: its devices get DeviceConfigured at once.", markup=False
        )
        return
    table = Table("#", "id", "command", "what", "added")
    for command in found:
        table.add_row(
            str(command.position),
            str(command.id),
            command.request_type,
            cell(command.label),
            cell(f"{command.created_at:%Y-%m-%d %H:%M} by {command.created_by or '-'}"),
        )
    stdout.print(table)


@app.command("add")
def add_setup_command(
    ctx: typer.Context,
    profile: Annotated[str, typer.Argument(help="The enrollment profile.")],
    install: Annotated[
        Path | None, typer.Option("--install", help="A .mobileconfig to install (XML or signed); kept sealed.")
    ] = None,
    device_name: Annotated[
        str | None,
        typer.Option(
            "--device-name", help=f"A device name template, e.g. iPad-{{serial}}; placeholders: {_PLACEHOLDERS}."
        ),
    ] = None,
    json_output: JSONOption = False,
) -> None:
    """Add a command after the profile's others: install a profile, or name the device (supervised devices)."""
    if (install is None) == (device_name is None):
        raise InvalidInput(
            "Give --install FILE or --device-name TEMPLATE (one per command).",
            hint="pippin profiles setup-commands add PROFILE --device-name 'iPad-{serial}'",
        )
    context = cli_context(ctx)
    if install is not None:
        data, payload = SetupCommandCreate(kind=SetupCommandKind.install_profile), _read_profile_file(install)
    else:
        # Not validated here: the service checks the template, and says what is wrong with it.
        data, payload = (
            SetupCommandCreate.model_construct(kind=SetupCommandKind.device_name, template=device_name),
            None,
        )
    with transaction(context.session_factory) as session:
        added = setup_service.add_setup_command(
            session,
            profile_name=profile,
            data=data,
            payload=payload,
            box=context.secret_box,
            actor=cli_actor(),
            now=utcnow(),
        )
    if json_output:
        print_json(added)
        return
    stdout.print(
        f"added {added.request_type} {added.label!r} as command {added.position} (id {added.id})", markup=False
    )


@app.command("remove")
def remove_setup_command(
    ctx: typer.Context,
    profile: Annotated[str, typer.Argument(help="The enrollment profile.")],
    command_id: Annotated[int, typer.Argument(help="The command's id (`setup-commands list` shows it).", min=1)],
) -> None:
    """Remove an enrollment-time command; devices that got it keep what it did."""
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        setup_service.remove_setup_command(
            session, profile_name=profile, command_id=command_id, actor=cli_actor(), now=utcnow()
        )
    stdout.print(f"removed command {command_id} from {profile!r}", markup=False)
