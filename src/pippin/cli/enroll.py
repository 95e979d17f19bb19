"""`pippin enroll`: manual enrollment, for test devices, re-enrollment and load tests.

A link (`pippin enroll link`) is opened in Safari on the device; a profile file (`pippin enroll profile`) goes to
tools that install profiles from files. Both allow N enrollments until they expire (``mdm/enrollment_links.py``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from pippin.cli.audit import cli_actor
from pippin.cli.context import CLIContext, cli_context
from pippin.cli.files import shown_path, written_after_commit
from pippin.cli.output import cell, print_json, stderr, stdout
from pippin.mdm import enrollment_links as link_service
from pippin.store.db import read_transaction, transaction

app = typer.Typer(help="Manual enrollment: links and profile files any device may enroll with.", no_args_is_help=True)

UsesOption = Annotated[
    int, typer.Option("--uses", help=f"How many enrollments it allows (1 to {link_service.MAX_USES}).")
]
ExpiresOption = Annotated[str, typer.Option("--expires", help="How long it lasts: 30m, 12h, 7d or 2w (at most 90d).")]


@app.command("link")
def create_link(ctx: typer.Context, uses: UsesOption = 1, expires: ExpiresOption = "7d") -> None:
    """Print a URL that serves an enrollment profile allowing N enrollments until it expires; shown only once."""
    link_service.check_uses(uses)
    lifetime = link_service.parse_lifetime(expires)
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        link, url, _profile = _create(session, context, uses=uses, lifetime=lifetime, with_url=True)
    assert url is not None, "a link has a URL"
    # print() rather than Rich: the URL must reach pipes whole, unwrapped, alone on its line.
    print(url)
    stderr.print(
        f"Enrollment link {link.id}: {_allowance(link)}. It is shown only this once; open it in Safari on the device.",
        markup=False,
    )


@app.command("profile")
def write_profile(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("-o", "--output", help="The .mobileconfig file to write.")],
    uses: UsesOption = 1,
    expires: ExpiresOption = "7d",
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
) -> None:
    """Write an enrollment profile allowing N enrollments until it expires, for tools that install files."""
    link_service.check_uses(uses)
    lifetime = link_service.parse_lifetime(expires)
    context = cli_context(ctx)
    # The file is checked before, and in place after, the transaction: a failure leaves neither challenge nor file.
    with written_after_commit(output, force=force) as staged, transaction(context.session_factory) as session:
        link, _url, profile = _create(session, context, uses=uses, lifetime=lifetime, with_url=False)
        assert staged is not None
        staged.write(profile)
    stderr.print(f"Wrote the enrollment profile to {shown_path(output)}: {_allowance(link)}.", markup=False)


def _create(
    session: Session, context: CLIContext, *, uses: int, lifetime: timedelta, with_url: bool
) -> tuple[link_service.EnrollmentLinkRead, str | None, bytes]:
    return link_service.create_link(
        session,
        settings=context.settings,
        box=context.secret_box,
        generate_key=context.generate_key,
        uses=uses,
        lifetime=lifetime,
        actor=cli_actor(),
        with_url=with_url,
    )


def _allowance(link: link_service.EnrollmentLinkRead) -> str:
    return f"{link.uses} enrollment{'s' if link.uses != 1 else ''} until {link.expires_at:%Y-%m-%d %H:%M} UTC"


@app.command("links")
def list_links(
    ctx: typer.Context, json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Every link and profile file, with the enrollments each still allows (never their URLs)."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        links = link_service.list_links(session)
    if json_output:
        print_json([link.model_dump(mode="json") for link in links])
        return
    table = Table("id", "kind", "uses left", "of", "expires (UTC)", "active", "created by")
    for link in links:
        table.add_row(
            str(link.id),
            link.kind,
            str(link.uses_left),
            str(link.uses),
            link.expires_at.strftime("%Y-%m-%d %H:%M"),
            "yes" if link.active else "no",
            cell(link.created_by),
        )
    stdout.print(table)
