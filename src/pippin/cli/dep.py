"""`pippin dep`: connect Apple MDM servers (key pair, token upload), list tokens, ask Apple about one, delete one.

Each command is one call into :mod:`pippin.dep.token` inside one transaction; nothing here decides anything.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from pippin.cli import dep_sync
from pippin.cli.audit import cli_actor
from pippin.cli.context import CLIContext, cli_context
from pippin.cli.files import shown_path, written_after_commit
from pippin.cli.output import print_json, stderr, stdout
from pippin.crypto.secrets import SecretBox
from pippin.dep import sync_runs as sync_run_service
from pippin.dep import token as token_service
from pippin.dep import token_deletion as token_deletion_service
from pippin.dep.schemas import DEPTokenRead, ExpiryLevel, TokenDeletionRead
from pippin.errors import InvalidInput
from pippin.store.db import read_transaction, transaction

app = typer.Typer(help="DEP: connect Apple MDM servers with server tokens, and check them.", no_args_is_help=True)
app.command("sync")(dep_sync.sync)
app.command("sync-history")(dep_sync.sync_history)

_EXPIRY_STYLES = {
    ExpiryLevel.ok: "green",
    ExpiryLevel.warning: "yellow",
    ExpiryLevel.alarm: "bold red",
    ExpiryLevel.expired: "bold white on red",
}
NameArgument = Annotated[str, typer.Argument(help="Pippin's name for the Apple MDM server's token, e.g. acme-ios.")]
JSONOption = Annotated[bool, typer.Option("--json", help="Print JSON with the REST API's keys.")]


def _box(context: CLIContext) -> SecretBox:
    return context.secret_box


@app.command("keypair")
def keypair(
    ctx: typer.Context,
    name: NameArgument,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the certificate to this file.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
) -> None:
    """Make the public key (.pem) to upload to an MDM server in Apple Business Manager (seed step 2)."""
    context = cli_context(ctx)
    # The file is checked before, and in place after, the transaction: a failure leaves neither key nor file.
    with written_after_commit(output, force=force) as staged, transaction(context.session_factory) as session:
        certificate_pem = token_service.create_keypair(session, name=name, box=_box(context), actor=cli_actor())
        if staged is not None:
            staged.write(certificate_pem.encode("ascii"))
    if output is None:
        stdout.print(certificate_pem, end="", markup=False)
    else:
        stderr.print(f"Wrote the certificate for {name!r} to {shown_path(output)}.", markup=False)
    stderr.print(
        "Next, in Apple Business Manager: Preferences, Your MDM Servers, Add (or Edit) a server, Upload Public Key "
        f"with this .pem; then Download Token and run `pippin dep upload-token {name} FILE --apple-id YOUR_APPLE_ID`.",
        markup=False,
    )


def _read_upload(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            # One byte past the limit is enough for the service to refuse it without reading a huge file.
            return handle.read(token_service.MAX_TOKEN_FILE_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a possible file name"
        raise InvalidInput(
            f"Cannot read {shown_path(path)}: {reason}.", hint="Pass the path of the downloaded *_smime.p7m file."
        ) from None


@app.command("upload-token")
def upload_token(
    ctx: typer.Context,
    name: NameArgument,
    file: Annotated[Path, typer.Argument(help="The server token (*_smime.p7m) downloaded from Apple.")],
    apple_id: Annotated[
        str, typer.Option("--apple-id", help="The Apple ID that downloaded the token; it must renew it too.")
    ],
    force: Annotated[bool, typer.Option("--force", help="Accept a token of another Apple MDM server.")] = False,
    json_output: JSONOption = False,
) -> None:
    """Add or renew a DEP token: decrypt, check with Apple, store encrypted (seed step 4)."""
    p7m = _read_upload(file)
    context = cli_context(ctx)

    result = token_service.upload_token(
        context.session_factory,
        name=name,
        p7m=p7m,
        apple_id=apple_id,
        box=_box(context),
        settings=context.settings,
        force=force,
        actor=cli_actor(),
    )
    for warning in result.warnings:
        stderr.print(f"[bold yellow]warning:[/] {warning}", markup=True, highlight=False)
    if json_output:
        print_json(result)
        return
    token = result.token
    stdout.print(
        f"Token {token.name!r} connected to Apple MDM server {token.server_name!r} ({token.server_uuid})"
        f" of {token.org_name or 'an unnamed organisation'}.",
        markup=False,
    )
    stdout.print(f"It expires {_expiry(token)}; renew it before then as {token.apple_id}.", markup=False)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _expiry(token: DEPTokenRead) -> str:
    if token.expires_at is None or token.days_left is None:
        return "-"
    left = f"{token.days_left} days left" if token.days_left >= 0 else f"expired {-token.days_left} days ago"
    return f"{token.expires_at:%Y-%m-%d} ({left})"


@app.command("tokens")
def tokens(ctx: typer.Context, json_output: JSONOption = False) -> None:
    """List DEP tokens: Apple server, organisation, Apple ID, expiry and status."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        listed = sync_run_service.with_sync_health(
            session, tokens=token_service.list_tokens(session), settings=context.settings
        )
    if json_output:
        print_json([token.model_dump(mode="json") for token in listed])
        return
    if not listed:
        stderr.print("No DEP tokens yet. Start with `pippin dep keypair NAME`.", markup=False)
        return
    table = Table(
        "name", "Apple MDM server", "organisation", "Apple ID", "expires", "status", "last sync", "last error"
    )
    for token in listed:
        style = _EXPIRY_STYLES.get(token.expiry_level) if token.expiry_level else None
        server = f"{token.server_name or '-'}\n{token.server_uuid or ''}".strip()
        status = token.status + (" (new key pair waiting)" if token.has_pending_keypair else "")
        error = f"{_when(token.last_error_at)}: {token.last_error}" if token.last_error else ""
        # Apple's names and error texts are data, not markup: Text cells print them as they are.
        table.add_row(
            Text(token.name),
            Text(server),
            Text(token.org_name or "-"),
            Text(token.apple_id or "-"),
            Text(_expiry(token), style=style or ""),
            Text(status),
            dep_sync.sync_cell(token.sync),
            Text(error),
        )
    stdout.print(table)


@app.command("account")
def account(ctx: typer.Context, name: NameArgument, json_output: JSONOption = False) -> None:
    """Ask Apple about the token's MDM server now; a success brings a refused token back to ok."""
    context = cli_context(ctx)
    answer = token_service.fetch_account(
        context.session_factory, name=name, box=_box(context), settings=context.settings
    )
    if json_output:
        print_json(answer.model_dump(mode="json"))
        return
    table = Table("field", "value", show_header=False)
    for field in ("server_name", "server_uuid", "admin_id", "org_name", "org_email", "org_phone", "org_address"):
        table.add_row(field, Text(str(getattr(answer, field) or "-")))
    table.add_row("org_id / type", Text(f"{answer.org_id or '-'} / {answer.org_type or '-'}"))
    for uri in ("/server/devices", "/devices/sync"):
        table.add_row(f"page limit {uri}", Text(str(answer.limit_for(uri) or "-")))
    stdout.print(table)


def _deletion_lines(found: TokenDeletionRead) -> list[str]:
    server = f" (Apple MDM server {found.server_name})" if found.server_name else ""
    default = f"; its default profile choice ({found.default_profile})" if found.default_profile else ""
    return [
        f"DEP token {found.token!r}{server}, with:",
        f"  {found.devices} device records, {found.sync_runs} sync runs, "
        f"{found.profile_definitions} profile definitions at Apple{default},",
        f"  {found.pending_assignments} queued or retrying profile assignments (never sent);",
        f"  {found.enrollments_unlinked} enrollments are kept and unlinked from the device records.",
        found.apple,
    ]


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking (for scripts).")] = False,
    json_output: JSONOption = False,
) -> None:
    """Delete a DEP token and its devices' records, sync runs, profile definitions and queued assignments.

    Shows what goes with it and asks first, unless --yes. Enrollment profiles and enrollments stay; nothing is
    sent to Apple.
    """
    context = cli_context(ctx)
    if not yes:
        with read_transaction(context.session_factory) as session:
            found = token_deletion_service.preview_token_deletion(session, name=name)
        stderr.print("This deletes from Pippin:", markup=False)
        for line in _deletion_lines(found):
            stderr.print(line, markup=False)
        if not typer.confirm(f"Delete DEP token {found.token!r}?", default=False, err=True):
            stderr.print("Nothing was deleted.", markup=False)
            raise typer.Exit(1)
    with transaction(context.session_factory) as session:
        removed = token_deletion_service.delete_token(session, name=name, actor=cli_actor())
    if json_output:
        print_json(removed)
        return
    stdout.print(
        f"Deleted DEP token {removed.token!r}: {removed.devices} device records, {removed.sync_runs} sync runs, "
        f"{removed.profile_definitions} profile definitions, {removed.pending_assignments} queued assignments; "
        f"{removed.enrollments_unlinked} enrollments kept, unlinked.",
        markup=False,
    )
    stderr.print(removed.apple, markup=False)
