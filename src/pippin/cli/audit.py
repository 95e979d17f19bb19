"""`pippin audit list`: the audit log, and the actor every CLI command that changes something passes on."""

from __future__ import annotations

import getpass
import socket
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from pippin.admin import audit as audit_service
from pippin.admin.audit import Actor, AuditAction, Interface
from pippin.cli.context import cli_context
from pippin.cli.output import print_json, stderr, stdout
from pippin.store.db import read_transaction
from pippin.store.models import MAX_STORED_INTEGER

app = typer.Typer(help="The audit log: every change an admin made, from the console, the API and the CLI.")


def _operating_system_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return "unknown"


def cli_actor() -> Actor:
    """Whoever runs this command, as the audit log records them: the operating-system user on this host."""
    return Actor(name=_operating_system_user(), interface=Interface.cli, source=socket.gethostname())


@app.command("list")
def list_events(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=audit_service.MAX_LIST, help="At most this many.")] = 100,
    before: Annotated[
        int | None,
        typer.Option("--before", min=1, max=MAX_STORED_INTEGER, help="Only events older than this id (paging)."),
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only this admin, API token or OS user.")] = None,
    action: Annotated[
        AuditAction | None, typer.Option("--action", help="Only this action, e.g. dep.token.upload.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts and export.")] = False,
) -> None:
    """The newest audit events first: who changed what, when, and from where."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        events = audit_service.list_events(session, limit=limit, before_id=before, actor=actor, action=action)
    if json_output:
        print_json([event.model_dump(mode="json") for event in events])
        return
    if not events:
        stderr.print("No audit events yet.", markup=False)
        return
    table = Table("id", "when (UTC)", "who", "via", "action", "target", "from")
    for event in events:
        table.add_row(
            str(event.id),
            event.at.strftime("%Y-%m-%d %H:%M:%S"),
            Text(event.actor),
            event.interface,
            Text(event.action),
            Text(event.target or "-"),
            Text(event.source or "-"),
        )
    stdout.print(table)
