"""The `pippin` command: the root callback, error translation, and the command groups."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import typer
from typer._click.core import Context as ClickContext
from typer._click.exceptions import ClickException, UsageError
from typer.core import TyperGroup

from pippin import __version__
from pippin.cli import admin as admin_cli
from pippin.cli import audit as audit_cli
from pippin.cli import commands as commands_cli
from pippin.cli import db as db_cli
from pippin.cli import dep as dep_cli
from pippin.cli import devices as devices_cli
from pippin.cli import enroll as enroll_cli
from pippin.cli import profiles as profiles_cli
from pippin.cli import push as push_cli
from pippin.cli import secrets as secrets_cli
from pippin.cli import users as users_cli
from pippin.cli.context import CLIContext, CLIInjections
from pippin.cli.doctor import doctor
from pippin.cli.output import stderr, stdout
from pippin.cli.serve import serve
from pippin.cli.sim import sim_app
from pippin.config import InvalidSettings, load_settings, unknown_variables
from pippin.errors import ConfigurationError, Conflict, InvalidInput, NotFound, PippinError, Unavailable
from pippin.logs import configure_logging
from pippin.printable import printable

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
#: A failure no rule foresaw (a bug): the README's "failed; the message says why".
EXIT_FAILED = 1

logger = logging.getLogger("pippin.cli")


def exit_code_for(error: PippinError) -> int:
    for error_type, code in EXIT_CODES.items():
        if isinstance(error, error_type):
            return code
    return EXIT_FAILED


def undecodable_argument(args: Sequence[str]) -> str | None:
    """The first argument that is not valid UTF-8, shown with its bytes escaped; ``None`` when all are.

    Python hands a command-line argument that is not UTF-8 over as a str holding lone surrogates (PEP 383);
    nothing can store, send or print such a str, so it is refused before any command sees it.
    """
    for position, arg in enumerate(args, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return f"argument {position} ({printable(_bytes_escaped(arg[:100]))})"
    return None


def _bytes_escaped(arg: str) -> str:
    """``arg`` with each undecodable byte as ``\\xNN`` (and any other lone surrogate as ``\\uNNNN``)."""
    return "".join(
        f"\\x{ord(char) - 0xDC00:02x}"
        if 0xDC80 <= ord(char) <= 0xDCFF
        else (f"\\u{ord(char):04x}" if 0xD800 <= ord(char) <= 0xDFFF else char)
        for char in arg
    )


def _report_unexpected(error: Exception) -> None:
    """One line for a failure Pippin has no rule for; the traceback only in the DEBUG log, for a bug report.

    The exception's own text is not printed: it may quote a secret (a key, a password) that was being handled.
    """
    logger.debug("unexpected failure", exc_info=error)
    stderr.print(f"[bold red]error:[/] Pippin failed unexpectedly ({type(error).__name__}).", markup=True)
    stderr.print(
        "This is a bug in Pippin. Run the command again with PIPPIN_LOG_LEVEL=DEBUG to see where it failed, "
        "and report that.",
        markup=False,
    )


class PippinGroup(TyperGroup):
    """The root group: refuses arguments that are not text, turns any :class:`PippinError` into one line on
    stderr and a meaningful exit code, and anything else into one line and exit code 1, never a traceback."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        bad = undecodable_argument(args)
        if bad is not None:
            raise UsageError(
                f"{bad} is not valid UTF-8 text. Pippin takes names, paths and values as UTF-8; "
                "rename the file or retype the value.",
                ctx=ctx,
            )
        return super().parse_args(ctx, args)

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except PippinError as error:
            stderr.print(f"[bold red]error:[/] {error.message}", markup=True)
            if error.hint:
                stderr.print(error.hint, markup=False)
            raise typer.Exit(exit_code_for(error)) from None
        except (ClickException, typer.Exit, typer.Abort):
            raise  # Click's own ways of ending: usage errors (exit 2), exits, Ctrl-C
        except BrokenPipeError:
            raise  # the reader of a pipe went away (`pippin ... | head`): Typer ends quietly
        except Exception as error:
            _report_unexpected(error)
            raise typer.Exit(EXIT_FAILED) from None
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
    injected = ctx.obj if isinstance(ctx.obj, CLIInjections) else CLIInjections()
    ctx.obj = CLIContext(settings=settings, generate_key=injected.generate_key)


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
app.add_typer(commands_cli.app, name="commands")
app.add_typer(dep_cli.app, name="dep")
app.add_typer(devices_cli.app, name="devices")
app.add_typer(enroll_cli.app, name="enroll")
app.add_typer(profiles_cli.app, name="profiles")
app.add_typer(push_cli.app, name="push")
app.add_typer(secrets_cli.app, name="secrets")
app.add_typer(sim_app, name="sim")
app.add_typer(users_cli.app, name="users")
app.command("serve")(serve)
app.command("doctor")(doctor)
