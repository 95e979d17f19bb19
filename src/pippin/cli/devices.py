"""`pippin devices`: "All corporate-owned devices", listed, filtered, sorted and shown, from the inventory service."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from pippin.cli.audit import cli_actor
from pippin.cli.command_input import confirm, parse_expiry, parse_payload
from pippin.cli.commands import ExpiresOption, ParamOption, PayloadFileOption, ProfileOption, YesOption
from pippin.cli.context import cli_context
from pippin.cli.output import cell, print_json, stderr, stdout
from pippin.inventory import devices as inventory_service
from pippin.inventory.schemas import AssignmentFilter, DeviceFilters, DeviceRead, DeviceSort, SortDirection
from pippin.inventory.state import STATE_LABELS, DeviceState
from pippin.mdm import command_sending as sending_service
from pippin.mdm.command_catalog import build_command
from pippin.mdm.setup_schemas import SetupWatch
from pippin.store.db import read_transaction, transaction
from pippin.store.models import MAX_STORED_INTEGER, utcnow

app = typer.Typer(
    help="The corporate-owned devices synced from Apple, and their enrollment states.", no_args_is_help=True
)

JSONOption = Annotated[bool, typer.Option("--json", help="Print JSON with the REST API's keys.")]
_STATE_STYLES = {
    DeviceState.not_contacted: "yellow",
    DeviceState.enrolled: "green",
    DeviceState.pending_reset: "yellow",
    DeviceState.unenrolled: "dim",
    DeviceState.removed: "dim",
    DeviceState.failed: "red",
}


def _label(state: DeviceState) -> Text:
    return cell(STATE_LABELS[state], style=_STATE_STYLES[state])


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _problems(device: DeviceRead) -> Text:
    """What keeps the device from being managed as it should: APNs refusing the push token it has now (no command
    wakes it), and its release from Setup Assistant (stuck, or a step that failed; or still waiting)."""
    parts = []
    if device.unreachable:
        parts.append(Text(f"push refused: {device.unreachable_reason or 'no reason'}", style="red"))
    if device.setup_problem is not None:
        parts.append(Text(f"setup {device.setup_problem.kind.value}", style="red"))
    elif device.awaiting_configuration:
        parts.append(Text("awaiting configuration"))
    return Text("; ").join(parts) if parts else Text("-")


@app.command("list")
def list_devices(
    ctx: typer.Context,
    state: Annotated[DeviceState | None, typer.Option("--state", help="Only devices in this state.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Only devices of this DEP token.")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="Only devices given this profile.")] = None,
    assignment: Annotated[
        AssignmentFilter | None,
        typer.Option("--assignment", help="Only devices with this assignment status (none: no assignment)."),
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Text in the serial, model, asset tag or description.")
    ] = None,
    cannot_enroll: Annotated[
        bool,
        typer.Option(
            "--cannot-enroll", "--no-profile", help="Only devices that cannot enroll: Apple holds no profile."
        ),
    ] = False,
    unreachable: Annotated[
        bool,
        typer.Option("--unreachable", help="Only devices Pippin cannot wake: APNs refused their push token."),
    ] = False,
    sort: Annotated[DeviceSort, typer.Option("--sort", help="The order; the serial breaks ties.")] = DeviceSort.serial,
    direction: Annotated[SortDirection, typer.Option("--direction", help="asc or desc.")] = SortDirection.asc,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_STORED_INTEGER, help="Show at most this many devices.")
    ] = 1000,
    json_output: JSONOption = False,
) -> None:
    """List the corporate-owned devices (seed: "All corporate-owned devices"), in serial order unless --sort."""
    context = cli_context(ctx)
    filters = DeviceFilters(
        state=state,
        token=token,
        profile=profile,
        assignment=assignment,
        search=search,
        cannot_enroll=cannot_enroll,
        unreachable=unreachable,
    )
    devices: list[DeviceRead] = []
    cursor: str | None = None
    more = False
    watch = SetupWatch(now=utcnow(), stuck_after=context.settings.setup_stuck_after)
    with read_transaction(context.session_factory) as session:
        while len(devices) < limit:
            page_size = min(inventory_service.MAX_PAGE, limit - len(devices))
            page = inventory_service.list_devices(
                session,
                filters=filters,
                sort=sort,
                direction=direction,
                limit=page_size,
                cursor=cursor,
                setup_watch=watch,
            )
            devices += page.devices
            cursor = page.next_cursor
            more = cursor is not None
            if not more:
                break
    if json_output:
        print_json([device.model_dump(mode="json") for device in devices])
        return
    if not devices:
        stderr.print("No devices match. `pippin dep sync NAME` brings in the devices Apple assigned.", markup=False)
        return
    table = Table(
        "serial", "model", "description", "asset tag", "OS", "token", "state", "profile", "Apple profile",
        "assignment", "last synced", "UDID", "product", "OS version", "user", "last seen", "problems",
    )  # fmt: skip
    for device in devices:
        # Apple's texts are data, not markup: cells print them as plain text, control characters escaped.
        table.add_row(
            cell(device.serial_number),
            cell(device.model),
            cell(device.description),
            cell(device.asset_tag),
            cell(device.os),
            cell(device.token),
            _label(device.enrollment_state),
            cell(device.profile),
            cell(device.profile_status),
            cell(
                device.assignment_status,
                missing="-" if device.can_enroll or not device.has_dep_record else "none: cannot enroll",
            ),
            _when(device.last_synced_at),
            # What the device itself reported at check-in; the primary user by id (`pippin users list`).
            cell(device.udid),
            cell(device.product_name),
            cell(device.os_version),
            cell(device.primary_user),
            _when(device.last_seen_at),
            _problems(device),
        )
    stdout.print(table)
    for device in devices:
        if device.setup_problem is not None:
            stderr.print(cell(f"{device.serial_number}: {device.setup_problem.reason}", style="red"))
    suffix = "; more match, raise --limit or narrow the search" if more else ""
    stderr.print(f"{len(devices)} devices{suffix}.", markup=False)


@app.command("show")
def show_device(
    ctx: typer.Context,
    serial: Annotated[
        str, typer.Argument(help="The serial number (or the UDID of a device that enrolled without reporting one).")
    ],
    json_output: JSONOption = False,
) -> None:
    """Show one device: Apple's record, its token, its enrollment (UDID, OS, product, primary user) and state."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        watch = SetupWatch(now=utcnow(), stuck_after=context.settings.setup_stuck_after)
        device = inventory_service.get_device(session, serial=serial, setup_watch=watch)
    if json_output:
        print_json(device)
        return
    table = Table("field", "value", show_header=False)
    for field, value in device.model_dump().items():
        if field == "enrollment_state":
            table.add_row(field, _label(device.enrollment_state))
            continue
        if field == "setup_problem":
            problem = device.setup_problem
            table.add_row(field, cell(None if problem is None else f"{problem.kind.value}: {problem.reason}"))
            continue
        table.add_row(field, cell(_when(value) if isinstance(value, datetime) else value))
    stdout.print(table)


@app.command("command")
def send_command(
    ctx: typer.Context,
    serial: Annotated[str, typer.Argument(help="The device's serial number.")],
    request_type: Annotated[str, typer.Argument(help="Apple's RequestType, e.g. DeviceLock or Raw.")],
    param: ParamOption = None,
    payload_file: PayloadFileOption = None,
    profile: ProfileOption = None,
    yes: YesOption = False,
    expires_in: ExpiresOption = None,
    json_output: JSONOption = False,
) -> None:
    """Queue an MDM command for one enrolled device; erase, lock and clear passcode ask to type the serial."""
    context = cli_context(ctx)
    payload = parse_payload(param or [], payload_file, profile)
    expiry = parse_expiry(expires_in)
    if build_command(request_type, payload).destructive:
        confirm(serial, what=f"{request_type} is destructive.", yes=yes)
    with transaction(context.session_factory) as session:
        queued = sending_service.send_command(
            session,
            serial=serial,
            request_type=request_type,
            payload=payload,
            box=context.secret_box,
            settings=context.settings,
            now=utcnow(),
            actor=cli_actor(),
            expires_in=expiry,
        )
    if json_output:
        print_json(queued)
        return
    stdout.print(f"Queued {queued.request_type} {queued.command_uuid} for {queued.serial_number}.", markup=False)


@app.command("commands")
def list_commands(
    ctx: typer.Context,
    serial: Annotated[str, typer.Argument(help="The device's serial number.")],
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=sending_service.MAX_LIST, help="At most this many.")
    ] = 100,
    answers: Annotated[bool, typer.Option("--answers", help="Print each answer too, its secrets masked.")] = False,
    json_output: JSONOption = False,
) -> None:
    """List a device's commands, newest first, with their status and the device's answer."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        commands = sending_service.list_device_commands(session, serial=serial, box=context.secret_box, limit=limit)
    if json_output:
        print_json([command.model_dump(mode="json") for command in commands])
        return
    table = Table("UUID", "command", "status", "queued", "sent", "answered", "error")
    for command in commands:
        error = "; ".join(str(item.get("LocalizedDescription", item)) for item in command.error_chain or [])
        table.add_row(
            cell(command.command_uuid), cell(command.request_type), cell(command.status.value),
            _when(command.created_at), _when(command.sent_at), _when(command.answered_at), cell(error),
        )  # fmt: skip
    stdout.print(table)
    for command in commands if answers else []:
        if command.response is not None:
            stdout.print(f"{command.request_type} {command.command_uuid}, answered:", markup=False)
            stdout.print(json.dumps(command.response, indent=2, sort_keys=True, default=str), markup=False)
