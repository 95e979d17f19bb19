"""`pippin db`: the database's schema revision, and the upgrade to this release's schema."""

from __future__ import annotations

import typer

from pippin.cli.context import cli_context
from pippin.cli.output import stdout
from pippin.store.db import shown_url
from pippin.store.migrate import current_revision, head_revision, upgrade_to_head

app = typer.Typer(help="The database: its schema revision and upgrades.", no_args_is_help=True)


def _where(ctx: typer.Context) -> str:
    return shown_url(cli_context(ctx).unchecked_engine.url)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Bring the database to this release's schema, keeping every row; run once after installing a new release.

    Safe to run from several machines at once (one migrates, the others find it done), and a no-op when the
    schema is already current. Back up the database first.
    """
    engine = cli_context(ctx).unchecked_engine
    done = upgrade_to_head(engine)
    if done.changed:
        before = done.from_revision or "an empty database"
        stdout.print(f"upgraded {_where(ctx)} from {before} to {done.to_revision}", markup=False)
    else:
        stdout.print(f"{_where(ctx)} is already at {done.to_revision}: nothing to do", markup=False)


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Say which schema revision the database is at and which one this release needs."""
    engine = cli_context(ctx).unchecked_engine
    current, head = current_revision(engine), head_revision(engine)
    state = "current" if current == head else "behind: run `pippin db upgrade`"
    stdout.print(f"{_where(ctx)}: at {current or 'no schema yet'}, this release needs {head} ({state})", markup=False)
