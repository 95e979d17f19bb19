"""`pippin dep sync` and `pippin dep sync-history`: "Sync now" from a shell, and what the syncs did.

Registered on the `pippin dep` group by ``cli/dep.py``. Each command calls :mod:`pippin.dep.sync` or
:mod:`pippin.dep.sync_runs`; the progress bar is driven by the sync's progress callback.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from pippin.cli.audit import cli_actor
from pippin.cli.context import cli_context
from pippin.cli.output import print_json, stderr, stdout
from pippin.dep import sync as sync_service
from pippin.dep import sync_and_assign
from pippin.dep import sync_runs as sync_run_service
from pippin.dep.sync_schemas import SyncHealthRead, SyncRunRead
from pippin.dep.token import dep_client_factory
from pippin.store.db import read_transaction

NameArgument = Annotated[str, typer.Argument(help="The DEP token's name, as in `pippin dep tokens`.")]
JSONOption = Annotated[bool, typer.Option("--json", help="Print JSON with the REST API's keys.")]

#: Exit code of a sync that Apple could not be reached for (the README's "try again later").
_EXIT_UNAVAILABLE = 5
_OUTCOME_STYLES = {"succeeded": "green", "failed": "bold red", "timed_out": "yellow", "running": "cyan"}


def sync(
    ctx: typer.Context,
    name: NameArgument,
    full: Annotated[
        bool,
        typer.Option("--full", help="Read every device; within 7 days of the last full sync only new ones are added."),
    ] = False,
    json_output: JSONOption = False,
) -> None:
    """Sync now: bring the devices assigned to this token's MDM server from Apple (seed step 7)."""
    context = cli_context(ctx)
    settings = context.settings
    box = context.secret_box
    open_client = dep_client_factory(box=box, settings=settings)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[pages]} pages, {task.fields[devices]} devices"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=json_output,
    ) as progress:
        task = progress.add_task(f"Syncing {name}", total=None, pages=0, devices=0)

        def show(step: sync_service.SyncProgress) -> None:
            progress.update(task, description=f"Syncing {name} ({step.phase})", pages=step.pages, devices=step.devices)

        result = sync_and_assign.sync_and_assign_now(
            context.session_factory,
            token_name=name,
            settings=settings,
            box=box,
            open_client=open_client,
            full=full,
            actor=cli_actor(),
            progress=show,
        )
    if json_output:
        print_json(result)
    else:
        _summary(result)
    if result.outcome == "failed":
        if not json_output:
            stderr.print(f"[bold red]error:[/] {result.error_message}", markup=True, highlight=False)
        raise typer.Exit(_EXIT_UNAVAILABLE if result.error_code == "dep_unavailable" else 1)


def _summary(run: SyncRunRead) -> None:
    duration = f"{run.duration_seconds:.1f} s" if run.duration_seconds is not None else "-"
    stdout.print(
        Text.assemble(
            (
                f"{run.kind.capitalize()} sync of {run.token} {run.outcome.replace('_', ' ')}",
                _OUTCOME_STYLES[run.outcome],
            ),
            f" in {duration}: {run.added} added, {run.modified} modified, {run.removed} removed, "
            f"{run.unchanged} unchanged ({run.pages} pages).",
        )
    )
    if run.warning:
        stderr.print(Text.assemble(("warning: ", "bold yellow"), run.warning))
    if run.outcome == "timed_out":
        stderr.print("The sync window ended first; the next sync resumes where this one stopped.", markup=False)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def sync_history(
    ctx: typer.Context,
    name: NameArgument,
    limit: Annotated[int, typer.Option("--limit", min=1, max=sync_run_service.MAX_HISTORY, help="How many runs.")] = 20,
    json_output: JSONOption = False,
) -> None:
    """The token's latest syncs, newest first: kind, outcome, error code and counts."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        runs = sync_run_service.list_sync_runs(session, token_name=name, limit=limit)
        health = sync_run_service.token_sync_health(session, token_name=name, settings=context.settings)
    if json_output:
        print_json([run.model_dump(mode="json") for run in runs])
        return
    table = Table(
        "started (UTC)", "kind", "trigger", "outcome", "added", "modified", "removed", "unchanged", "seconds", "problem"
    )
    for run in runs:
        seconds = f"{run.duration_seconds:.1f}" if run.duration_seconds is not None else "-"
        problem = run.warning or (f"{run.error_code}: {run.error_message}" if run.error_code else "")
        table.add_row(
            _when(run.started_at),
            run.kind,
            run.trigger,
            Text(run.outcome, style=_OUTCOME_STYLES.get(run.outcome, "")),
            str(run.added),
            str(run.modified),
            str(run.removed),
            str(run.unchanged),
            seconds,
            Text(problem),
        )
    stdout.print(table)
    if health.running:
        stdout.print(f"A sync is running; Sync reopens by {_when(health.window_reopens_at)} UTC.", markup=False)
    stdout.print(
        f"Next scheduled sync: {_when(health.next_sync_at)} UTC. Full refresh allowed: "
        f"{'now' if health.next_full_sync_allowed_at is None else _when(health.next_full_sync_allowed_at) + ' UTC'}.",
        markup=False,
    )


def sync_cell(health: SyncHealthRead | None) -> Text:
    """The `pippin dep tokens` column: the last sync's outcome and time, and whether one runs now."""
    if health is None or health.last_run is None:
        return Text("never")
    last = health.last_run
    line = Text(last.outcome.replace("_", " "), style=_OUTCOME_STYLES.get(last.outcome, ""))
    line.append(f" {last.kind} {_when(last.started_at)}")
    if last.error_code:
        line.append(f" ({last.error_code})")
    if health.running:
        line.append(f"\nrunning, window ends {_when(health.window_reopens_at)}")
    elif health.next_sync_at is not None:
        line.append(f"\nnext {_when(health.next_sync_at)}")
    return line
