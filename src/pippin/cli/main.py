"""The `pippin` command: the root callback, error translation, and the command groups."""

from __future__ import annotations

import logging
from typing import Any

import typer
from typer._click.core import Context as ClickContext
from typer.core import TyperGroup

from pippin import __version__
from pippin.cli import admin as admin_cli
from pippin.cli import audit as audit_cli
from pippin.cli import db as db_cli
from pippin.cli import dep as dep_cli
from pippin.cli import devices as devices_cli
from pippin.cli import profiles as profiles_cli
from pippin.cli import secrets as secrets_cli
from pippin.cli.context import CLIContext
from pippin.cli.doctor import doctor
from pippin.cli.output import stderr, stdout
from pippin.cli.serve import serve
from pippin.cli.sim import sim_app
from pippin.config import InvalidSettings, load_settings, unknown_variables
from pippin.errors import ConfigurationError, Conflict, InvalidInput, NotFound, PippinError, Unavailable
from pippin.logs import configure_logging

#: Exit codes, documented in the README: scripts can tell "fix your input" from "try again later".
#: A configuration Pippin cannot use (another master key than the database's, a key file others can read) is
#: "fix your input" too.
EXIT_CODES: dict[type[PippinError], int] = {
    InvalidInput: 2,
    ConfigurationError: 2,
    NotFound: 3,
    Conflict: 4,
    Unavailable: 5,
}


def exit_code_for(error: PippinError) -> int:
    for error_type, code in EXIT_CODES.items():
        if isinstance(error, error_type):
            return code
    return 1


class PippinGroup(TyperGroup):
    """The root group: turns any :class:`PippinError` into one line on stderr and a meaningful exit code."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except PippinError as error:
            stderr.print(f"[bold red]error:[/] {error.message}", markup=True)
            if error.hint:
                stderr.print(error.hint, markup=False)
            raise typer.Exit(exit_code_for(error)) from None
        finally:
            obj = ctx.obj
            if isinstance(obj, CLIContext):
                obj.close()


app = typer.Typer(
    cls=PippinGroup,
    help="Pippin: MDM for corporate-owned iPhones and iPads enrolled through Apple's DEP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(ctx: typer.Context) -> None:
    """Read the settings from PIPPIN_* environment variables once, for every command."""
    try:
        settings = load_settings()
    except InvalidSettings as error:
        stderr.print("[bold red]error:[/] invalid PIPPIN_* setting:", markup=True)
        for problem in error.problems:
            stderr.print(f"  {problem}", markup=False)
        stderr.print(error.hint, markup=False)
        raise typer.Exit(exit_code_for(error)) from None
    configure_logging(settings.log_level, settings.log_format)
    warn_about_unknown_variables()
    ctx.obj = CLIContext(settings=settings)


def warn_about_unknown_variables() -> None:
    """Say once, at start, which PIPPIN_* variables are no setting: a typo there is otherwise silently ignored."""
    for name, closest in unknown_variables():
        fields = {"variable": name, "did_you_mean": closest or "-"}
        logging.getLogger("pippin.config").warning("unknown PIPPIN_* variable ignored", extra={"fields": fields})


@app.command()
def version() -> None:
    """Print Pippin's version."""
    stdout.print(f"pippin {__version__}")


app.add_typer(db_cli.app, name="db")
app.add_typer(admin_cli.app, name="admin")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(dep_cli.app, name="dep")
app.add_typer(devices_cli.app, name="devices")
app.add_typer(profiles_cli.app, name="profiles")
app.add_typer(secrets_cli.app, name="secrets")
app.add_typer(sim_app, name="sim")
app.command("serve")(serve)
app.command("doctor")(doctor)
