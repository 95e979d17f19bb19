"""`pippin admin`: the people who run Pippin — console accounts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from pippin.admin import api_tokens as api_token_service
from pippin.admin import user_lifecycle as lifecycle_service
from pippin.admin import users as user_service
from pippin.admin.schemas import AdminUserRead
from pippin.cli.audit import cli_actor
from pippin.cli.context import cli_context
from pippin.cli.output import print_json, stdout
from pippin.cli.password_input import read_password
from pippin.errors import InvalidInput
from pippin.store.db import read_transaction, transaction
from pippin.store.models import APITokenScope

app = typer.Typer(help="Admins: console accounts and REST API tokens.", no_args_is_help=True)
# Every command that changes an account is one call into pippin.admin.user_lifecycle inside one transaction.
user_app = typer.Typer(help="Console accounts (argon2-hashed passwords, admin or read-only).", no_args_is_help=True)
app.add_typer(user_app, name="user")


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
    password = read_password(password_stdin)
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
    table = Table("e-mail", "role", "last sign-in (UTC)", "disabled since")
    for user in users:
        last = user.last_sign_in_at.strftime("%Y-%m-%d %H:%M") if user.last_sign_in_at else "-"
        disabled = user.disabled_at.strftime("%Y-%m-%d %H:%M") if user.disabled_at else "-"
        table.add_row(Text(user.email), user.role, last, disabled)
    stdout.print(table)


EmailArgument = Annotated[str, typer.Argument(help="The admin's e-mail address.")]
JSONOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print_user(user: AdminUserRead, message: str, *, json_output: bool) -> None:
    if json_output:
        print_json(user)
    else:
        stdout.print(message, markup=False)


@user_app.command("disable")
def disable_user(ctx: typer.Context, email: EmailArgument, json_output: JSONOption = False) -> None:
    """Disable an account: it cannot sign in, and its console sessions end now."""
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        user = lifecycle_service.disable_user(session, email=email, actor=cli_actor())
    _print_user(user, f"{user.email} is disabled; their console sessions have ended", json_output=json_output)


@user_app.command("enable")
def enable_user(ctx: typer.Context, email: EmailArgument, json_output: JSONOption = False) -> None:
    """Let a disabled account sign in again."""
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        user = lifecycle_service.enable_user(session, email=email, actor=cli_actor())
    _print_user(user, f"{user.email} is enabled and can sign in again", json_output=json_output)


@user_app.command("unlock")
def unlock_user(ctx: typer.Context, email: EmailArgument, json_output: JSONOption = False) -> None:
    """Forget an account's failed sign-ins, from every address, so that it may sign in at once."""
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        user = lifecycle_service.unlock_user(session, email=email, actor=cli_actor(), secret_box=context.secret_box)
    _print_user(user, f"{user.email} is unlocked and can sign in now", json_output=json_output)


@user_app.command("set-role")
def set_role(
    ctx: typer.Context,
    email: EmailArgument,
    role: Annotated[str, typer.Argument(help="admin (changes things) or read-only (only looks).")],
    json_output: JSONOption = False,
) -> None:
    """Give an account another role; it applies from its next request."""
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        user = lifecycle_service.set_role(session, email=email, role=role, actor=cli_actor())
    _print_user(user, f"{user.email} is now {user.role}", json_output=json_output)


@user_app.command("reset-password")
def reset_password(
    ctx: typer.Context,
    email: EmailArgument,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from standard input (for scripts).")
    ] = False,
    generate: Annotated[
        bool, typer.Option("--generate", help="Let Pippin generate the password and print it once.")
    ] = False,
) -> None:
    """Give an account a new password (prompted for twice, unless --password-stdin or --generate); this also
    unlocks it and ends its console sessions."""
    if password_stdin and generate:
        raise InvalidInput("--password-stdin and --generate exclude each other.", hint="Pass one of them, or neither.")
    address = user_service.normalize_email(email)
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:  # an unknown address is refused before the prompt
        lifecycle_service.get_user(session, email=address)
    password = None if generate else read_password(password_stdin)
    if password is not None:
        user_service.check_password_strength(password)  # refused before the master key's box is opened
    with transaction(context.session_factory) as session:
        reset = lifecycle_service.reset_password(
            session,
            email=address,
            password=password,
            actor=cli_actor(),
            secret_box=context.secret_box,
        )
    if reset.password is not None:
        # print() rather than Rich: the password must reach pipes whole, alone on its line.
        print(reset.password)
    stdout.print(
        f"{reset.admin.email} has a new password"
        + (" (above: shown only this once, pass it on)" if reset.password is not None else "")
        + "; their console sessions have ended",
        markup=False,
        style="dim" if reset.password is not None else "",
    )


token_app = typer.Typer(help="API tokens for the REST API (/api/v1), shown once, kept as hashes.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def create_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. ci-deploy (letters, digits, . _ -).")],
    scope: Annotated[
        APITokenScope,
        typer.Option("--scope", help="read-only (GET requests only) or read-write (may change things)."),
    ] = APITokenScope.read_only,
) -> None:
    """Create an API token and print it once: it cannot be shown again. Read-only unless --scope read-write."""
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        token, plaintext = api_token_service.create_api_token(session, name=name, scope=scope, actor=cli_actor())
    # print() rather than Rich: the token must reach pipes whole, unwrapped, alone on its line.
    print(plaintext)
    stdout.print(
        f"{token.scope} API token {token.name!r} created. It is shown only this once; store it now.\n"
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
    table = Table("name", "scope", "active", "created (UTC)", "last used (UTC)", "revoked (UTC)")
    for token in tokens:
        table.add_row(
            Text(token.name),
            token.scope,
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
