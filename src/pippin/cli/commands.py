"""`pippin commands`: one command for many devices, canceling one, the second admin's approval of a bulk erase, and
the queue's upkeep run now; the CLI face of ``pippin.mdm.command_sending``, ``pippin.mdm.command_approvals`` and
``pippin.mdm.command_upkeep``."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from pippin.cli.audit import cli_actor
from pippin.cli.command_input import confirm, parse_expiry, parse_payload
from pippin.cli.context import cli_context
from pippin.cli.output import cell, print_json, stderr, stdout
from pippin.inventory.schemas import DeviceFilters
from pippin.inventory.state import DeviceState
from pippin.mdm import command_approvals as approval_service
from pippin.mdm import command_sending as sending_service
from pippin.mdm import command_upkeep as upkeep_service
from pippin.mdm.command_batches import check_bulk_id
from pippin.mdm.command_catalog import build_command
from pippin.mdm.command_schemas import CommandApprovalRead
from pippin.store.db import read_transaction, transaction
from pippin.store.models import MAX_STORED_INTEGER, utcnow

app = typer.Typer(
    help="MDM commands for many devices, approving a bulk erase, and pruning the command history.",
    no_args_is_help=True,
)

JSONOption = Annotated[bool, typer.Option("--json", help="Print JSON with the REST API's keys.")]
ParamOption = Annotated[
    list[str] | None, typer.Option("--param", help="KEY=text or KEY:=json (repeatable), by Apple's key names.")
]
PayloadFileOption = Annotated[Path | None, typer.Option("--payload-file", help="A JSON object of the keys.")]
ProfileOption = Annotated[Path | None, typer.Option("--profile", help="InstallProfile: the .mobileconfig file.")]
YesOption = Annotated[bool, typer.Option("--yes", help="Do not ask to confirm a destructive command.")]
ExpiresOption = Annotated[
    str | None,
    typer.Option("--expires-in", help="How long it waits for the device: PT1H, P1D or seconds (default: the setting)."),
]


def _show_approval(approval: CommandApprovalRead) -> None:
    stdout.print(
        f"Approval request {approval.id}: {approval.request_type} for {approval.devices} devices "
        f"({approval.status.value}, expires {approval.expires_at:%Y-%m-%d %H:%M} UTC).",
        markup=False,
    )


@app.command("send")
def send(
    ctx: typer.Context,
    request_type: Annotated[str, typer.Argument(help="Apple's RequestType, e.g. DeviceInformation.")],
    serial: Annotated[list[str] | None, typer.Option("--serial", help="A device's serial number (repeatable).")] = None,
    state: Annotated[DeviceState | None, typer.Option("--state", help="Only devices in this state.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Only devices of this DEP token.")] = None,
    profile_name: Annotated[str | None, typer.Option("--enrollment-profile", help="Only devices given it.")] = None,
    search: Annotated[str | None, typer.Option("--search", help="Text in the serial, model, ...")] = None,
    param: ParamOption = None,
    payload_file: PayloadFileOption = None,
    profile: ProfileOption = None,
    yes: YesOption = False,
    expires_in: ExpiresOption = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="The bulk id of a send that stopped: queue only what it did not.")
    ] = None,
    json_output: JSONOption = False,
) -> None:
    """Queue one command for many enrolled devices, 1000 per transaction; a bulk erase waits for another admin."""
    context = cli_context(ctx)
    filtered = any(value is not None for value in (state, token, profile_name, search))
    if bool(serial) == filtered:
        raise typer.BadParameter("Give --serial, or filters (--state, --token, --enrollment-profile, --search).")
    payload = parse_payload(param or [], payload_file, profile)
    queued = build_command(request_type, payload)
    if queued.destructive:
        confirm("yes", what=f"{queued.request_type} is destructive and goes to every device chosen.", yes=yes)
    filters = None if serial else DeviceFilters(state=state, token=token, profile=profile_name, search=search)
    expiry = parse_expiry(expires_in)
    bulk_id = check_bulk_id(resume) if resume is not None else str(uuid.uuid4())
    if not json_output and not approval_service.needs_approval(queued.request_type):
        stderr.print(f"Bulk id {bulk_id}: should this stop, run it again with --resume {bulk_id}.", markup=False)
    with Progress(console=stderr, transient=True, disable=json_output) as bar:
        task = bar.add_task("Queuing", total=None)
        result = sending_service.send_bulk(
            context.session_factory,
            request_type=request_type,
            payload=payload,
            serials=serial or None,
            filters=filters,
            box=context.secret_box,
            settings=context.settings,
            clock=utcnow,
            actor=cli_actor(),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            bulk_id=bulk_id,
            expires_in=expiry,
        )
    if json_output:
        print_json(result)
        return
    if result.approval is not None:
        _show_approval(result.approval)
        stderr.print("Another admin must approve it: `pippin commands approve ID`.", markup=False)
        return
    said = [f"Queued {queued.request_type} for {result.devices} devices"]
    if result.already_queued:
        said.append(f"{result.already_queued} had it from the earlier run")
    if result.not_enrolled:
        said.append(f"{result.not_enrolled} not enrolled, left out")
    if result.not_applicable:
        said.append(f"{result.not_applicable} it does not apply to, left out ({'; '.join(result.reasons)})")
    stdout.print("; ".join(said) + ".", markup=False)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    serial: Annotated[str, typer.Argument(help="The device's serial number.")],
    command_uuid: Annotated[str, typer.Argument(help="The command's UUID (`pippin devices commands SERIAL`).")],
    json_output: JSONOption = False,
) -> None:
    """Cancel a command the device has not fetched yet."""
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        canceled = sending_service.cancel_command(
            session, serial=serial, command_uuid=command_uuid, box=context.secret_box, now=utcnow(), actor=cli_actor()
        )
    if json_output:
        print_json(canceled)
        return
    stdout.print(f"Canceled {canceled.request_type} {canceled.command_uuid}.", markup=False)


ApprovalArgument = Annotated[int, typer.Argument(min=1, max=MAX_STORED_INTEGER, help="The approval request's id.")]


@app.command("approve")
def approve(
    ctx: typer.Context, approval_id: ApprovalArgument, yes: YesOption = False, json_output: JSONOption = False
) -> None:
    """Approve another admin's bulk erase, and queue it."""
    context = cli_context(ctx)
    actor = cli_actor()
    with read_transaction(context.session_factory) as session:
        asked = approval_service.get_approval(session, approval_id=approval_id, now=utcnow())
    confirm(str(asked.devices), what=f"This erases {asked.devices} devices ({asked.selection}).", yes=yes)
    with transaction(context.session_factory) as session:
        approval_service.approve(session, approval_id=approval_id, now=utcnow(), actor=actor)
    with Progress(console=stderr, transient=True, disable=json_output) as bar:
        task = bar.add_task("Queuing", total=asked.devices)
        done = approval_service.queue_approved(
            context.session_factory,
            approval_id=approval_id,
            box=context.secret_box,
            settings=context.settings,
            clock=utcnow,
            actor=actor,
            progress=lambda queued, total: bar.update(task, completed=queued, total=total),
        )
    if json_output:
        print_json(done)
        return
    _show_approval(done)


@app.command("approvals")
def approvals(ctx: typer.Context, json_output: JSONOption = False) -> None:
    """List bulk erase requests, newest first."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        listed = approval_service.list_approvals(session, now=utcnow())
    if json_output:
        print_json([approval.model_dump(mode="json") for approval in listed])
        return
    table = Table("id", "command", "devices", "chosen by", "status", "asked by", "expires", "approved by", "queued")
    for a in listed:
        table.add_row(
            str(a.id), cell(a.request_type), str(a.devices), cell(a.selection), a.status.value, cell(a.requested_by),
            f"{a.expires_at:%Y-%m-%d %H:%M}", cell(a.approved_by), str(a.queued),
        )  # fmt: skip
    stdout.print(table)


@app.command("prune")
def prune(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what a pass would change; change nothing.")] = False,
    json_output: JSONOption = False,
) -> None:
    """Run the queue's upkeep now (`pippin serve` runs it by itself): expire the waiting commands past their
    expiry, then delete the finished ones older than PIPPIN_COMMAND_RETENTION, in short batches."""
    context = cli_context(ctx)
    if dry_run:
        counts = upkeep_service.count_upkeep(context.session_factory, settings=context.settings, clock=utcnow)
    else:
        counts = upkeep_service.run_upkeep(context.session_factory, settings=context.settings, clock=utcnow)
    if json_output:
        print_json({"expired": counts.expired, "pruned": counts.pruned, "dry_run": counts.dry_run})
        return
    kept = context.settings.command_retention
    retention = f"{kept.days} days" if kept == timedelta(days=kept.days) else str(kept)
    if dry_run:
        stdout.print(
            f"Would expire {counts.expired} waiting commands and delete {counts.pruned} finished commands "
            f"(finished more than {retention} ago); nothing was changed.",
            markup=False,
        )
        return
    stdout.print(
        f"Expired {counts.expired} waiting commands; deleted {counts.pruned} finished commands "
        f"(finished more than {retention} ago).",
        markup=False,
    )
