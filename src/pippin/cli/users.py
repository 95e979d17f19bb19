"""`pippin users`: the organisation's users, who sign in on a device's enrollment page (user affinity)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pippin.admin import directory as directory_service
from pippin.admin import directory_import as import_service
from pippin.cli.audit import cli_actor
from pippin.cli.context import cli_context
from pippin.cli.files import shown_path
from pippin.cli.output import cell, print_json, stdout
from pippin.cli.password_input import read_password
from pippin.errors import Conflict, InvalidInput
from pippin.store.db import read_transaction, transaction

app = typer.Typer(
    help="Organisation users: who signs in when a device with user affinity enrolls (a local directory).",
    no_args_is_help=True,
)

UsernameArgument = Annotated[str, typer.Argument(help="What the user types to sign in, e.g. alice.smith.")]
JSONOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("add")
def add_user(
    ctx: typer.Context,
    username: UsernameArgument,
    name: Annotated[str | None, typer.Option("--name", help="The user's name as people read it.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="The user's e-mail address.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (for scripts).")
    ] = False,
    json_output: JSONOption = False,
) -> None:
    """Add a user; the password is prompted for (twice) unless --password-stdin."""
    wanted = directory_service.normalize_username(username)
    directory_service.check_display_name(name)
    directory_service.check_user_email(email)
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:  # a taken name is refused before the prompt
        if directory_service.find_user(session, username=wanted) is not None:
            raise Conflict(f"A user {wanted!r} already exists.", hint="Choose another username.")
    password = read_password(password_stdin)
    with transaction(context.session_factory) as session:
        user = directory_service.add_user(
            session, username=wanted, password=password, display_name=name, email=email, actor=cli_actor()
        )
    if json_output:
        print_json(user)
        return
    stdout.print(f"added {user.username}; they can sign in when a device enrolls", markup=False)


@app.command("list")
def list_users(ctx: typer.Context, json_output: JSONOption = False) -> None:
    """Every user, with whether they are disabled."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        users = directory_service.list_users(session)
    if json_output:
        print_json([user.model_dump(mode="json") for user in users])
        return
    table = Table("username", "name", "e-mail", "created (UTC)", "disabled since")
    for user in users:
        disabled = user.disabled_at.strftime("%Y-%m-%d %H:%M") if user.disabled_at else "-"
        table.add_row(
            cell(user.username),
            cell(user.display_name),
            cell(user.email),
            user.created_at.strftime("%Y-%m-%d %H:%M"),
            disabled,
        )
    stdout.print(table)


@app.command("disable")
def disable_user(ctx: typer.Context, username: UsernameArgument, json_output: JSONOption = False) -> None:
    """Disable a user: their password opens no enrollment page from now on."""
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        user = directory_service.disable_user(session, username=username, actor=cli_actor())
    if json_output:
        print_json(user)
        return
    stdout.print(f"{user.username} is disabled; they cannot enroll a device", markup=False)


def _read_csv(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            # One byte past the limit is enough for the import to refuse it without reading a huge file.
            return handle.read(import_service.MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a possible file name"
        raise InvalidInput(f"Cannot read {shown_path(path)}: {reason}.", hint="Pass the path of a CSV file.") from None


@app.command("import")
def import_users(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A CSV file with the header username,name,email,password.")],
    json_output: JSONOption = False,
) -> None:
    """Add every user of a CSV file, or none: a file with any problem is refused whole, each problem by line."""
    content = _read_csv(file)
    import_service.parse_users(content)  # refused before the database is opened
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        users = import_service.import_users(session, content=content, actor=cli_actor())
    if json_output:
        print_json([user.model_dump(mode="json") for user in users])
        return
    stdout.print(f"imported {len(users)} user{'s' if len(users) != 1 else ''}", markup=False)
