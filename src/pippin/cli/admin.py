"""`pippin admin`: the people who run Pippin — console accounts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from pippin.admin import api_tokens as api_token_service
from pippin.admin import users as user_service
from pippin.cli.audit import cli_actor
from pippin.cli.context import cli_context
from pippin.cli.output import print_json, stdout
from pippin.errors import InvalidInput
from pippin.store.db import read_transaction, transaction

app = typer.Typer(help="Admins: console accounts and REST API tokens.", no_args_is_help=True)
user_app = typer.Typer(help="Console accounts (argon2-hashed passwords, admin or read-only).", no_args_is_help=True)
app.add_typer(user_app, name="user")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line, as `echo "$PASSWORD" | pippin admin user create ...` sends it; read a little past the limit
        # so an oversized input is refused instead of silently cut.
        not_text = InvalidInput("The password on standard input is not UTF-8 text.", hint="Send it as UTF-8.")
        try:
            line = sys.stdin.readline(user_service.MAX_PASSWORD_CHARS + 2)
            # Undecodable bytes arrive as lone surrogates (PEP 383), or fail right away under a strict locale.
            line.encode("utf-8")
        except UnicodeError:
            raise not_text from None
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise InvalidInput("No password arrived on standard input.", hint="Send it as one line.")
        return password
    prompted: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return prompted


@user_app.command("create")
def create_user(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The admin's e-mail address; it is their sign-in name.")],
    role: Annotated[str, typer.Option("--role", help="admin (changes things) or read-only (only looks).")] = "admin",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (for scripts).")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a console account; the password is prompted for (twice) unless --password-stdin."""
    address = user_service.normalize_email(email)
    user_service.parse_role(role)
    password = _read_password(password_stdin)
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        user = user_service.create_user(session, email=address, password=password, role=role, actor=cli_actor())
    if json_output:
        print_json(user)
        return
    stdout.print(f"created {user.role} admin {user.email}; they can sign in to the console now", markup=False)


@user_app.command("list")
def list_users(
    ctx: typer.Context, json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Every console account with its role and last sign-in."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        users = user_service.list_users(session)
    if json_output:
        print_json([user.model_dump(mode="json") for user in users])
        return
    table = Table("e-mail", "role", "last sign-in (UTC)", "locked until")
    for user in users:
        last = user.last_sign_in_at.strftime("%Y-%m-%d %H:%M") if user.last_sign_in_at else "-"
        locked = user.locked_until.strftime("%Y-%m-%d %H:%M") if user.locked_until else "-"
        table.add_row(Text(user.email), user.role, last, locked)
    stdout.print(table)


token_app = typer.Typer(help="API tokens for the REST API (/api/v1), shown once, kept as hashes.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def create_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. ci-deploy (letters, digits, . _ -).")],
) -> None:
    """Create an API token and print it once: it cannot be shown again."""
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        token, plaintext = api_token_service.create_api_token(session, name=name, actor=cli_actor())
    # print() rather than Rich: the token must reach pipes whole, unwrapped, alone on its line.
    print(plaintext)
    stdout.print(
        f"API token {token.name!r} created. It is shown only this once; store it now.\n"
        f"Use it as the header `Authorization: Bearer <token>`, e.g.\n"
        f"  curl -H 'Authorization: Bearer <token>' http://127.0.0.1:8000/api/v1/dep/tokens",
        markup=False,
        style="dim",
    )


@token_app.command("list")
def list_tokens(
    ctx: typer.Context, json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Every API token, active and revoked, with when it was last used (never the token itself)."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        tokens = api_token_service.list_api_tokens(session)
    if json_output:
        print_json([token.model_dump(mode="json") for token in tokens])
        return
    table = Table("name", "active", "created (UTC)", "last used (UTC)", "revoked (UTC)")
    for token in tokens:
        table.add_row(
            Text(token.name),
            "yes" if token.active else "no",
            token.created_at.strftime("%Y-%m-%d %H:%M"),
            token.last_used_at.strftime("%Y-%m-%d %H:%M") if token.last_used_at else "-",
            token.revoked_at.strftime("%Y-%m-%d %H:%M") if token.revoked_at else "-",
        )
    stdout.print(table)


@token_app.command("revoke")
def revoke_token(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke an API token: requests with it get 401 from now on."""
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        token = api_token_service.revoke_api_token(session, name=name, actor=cli_actor())
    revoked_at = token.revoked_at.strftime("%Y-%m-%d %H:%M UTC") if token.revoked_at else "now"
    stdout.print(f"API token {token.name!r} is revoked (since {revoked_at}).", markup=False)
