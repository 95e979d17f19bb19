"""`pippin push`: APNs pushes from the command line: a test push to a raw token, and a device's push state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from pippin.cli.audit import cli_actor
from pippin.cli.context import CLIContext, cli_context
from pippin.cli.output import print_json, stdout
from pippin.config import Settings
from pippin.push import probe
from pippin.push.apns import APNsClient
from pippin.push.delivery import IdentityLoader, PushSender, no_push_certificate
from pippin.push.schemas import PushStatusRead, PushTestRead
from pippin.push.status import get_push_status
from pippin.store.db import read_transaction

JSONOption = Annotated[bool, typer.Option("--json", help="Print JSON with the REST API's keys.")]

#: The push certificate in force for a command, from the certificate store, opened with the master key's box.
CertificateSource = Callable[[CLIContext], IdentityLoader]
#: Opens the APNs client for a command (the production one at PIPPIN_APNS_BASE_URL unless a test passes its own).
SenderFactory = Callable[[Settings], PushSender]


def stored_certificate(_context: CLIContext) -> IdentityLoader:
    """The certificate store's ``load_push_identity(session, box=context.secret_box)``; none is connected here."""
    return no_push_certificate


def _show_test(answer: PushTestRead) -> None:
    stdout.print(f"APNs:      {answer.apns_base_url}", markup=False)
    stdout.print(f"topic:     {answer.topic}", markup=False)
    stdout.print(f"outcome:   {answer.result.value}", markup=False)
    stdout.print(f"status:    {answer.status if answer.status is not None else '- (no answer)'}", markup=False)
    stdout.print(f"reason:    {answer.reason or '-'}", markup=False)
    stdout.print(f"apns-id:   {answer.apns_id or '-'}", markup=False)


def _show_status(status: PushStatusRead) -> None:
    counts = status.counts
    stdout.print(f"UDID:         {status.udid}", markup=False)
    refused = f" ({status.token_refused_reason}, {status.token_refused_at})" if status.token_refused_at else ""
    stdout.print(f"token:        {status.token_state.value}{refused}", markup=False)
    if status.pending:
        pending = f"since {status.wanted_at}, {status.attempts} attempts, next {status.next_attempt_at}"
        stdout.print(f"pending push: {pending}", markup=False)
    last = status.last_result.value if status.last_result else "-"
    stdout.print(f"last push:    {status.last_push_at or '-'} {last} {status.last_reason or ''}".rstrip(), markup=False)
    stdout.print(
        f"pushes:       {counts.pushes} (delivered {counts.delivered}, token refused {counts.token_refused}, "
        f"certificate refused {counts.certificate_refused}, retryable {counts.retryable}, "
        f"request errors {counts.request_error}, expired {counts.expired})",
        markup=False,
    )


def create_push_app(
    *, certificate: CertificateSource = stored_certificate, open_sender: SenderFactory = APNsClient.from_settings
) -> typer.Typer:
    """The `pippin push` group, with the certificate store and the APNs client it uses (tests pass theirs)."""
    app = typer.Typer(help="APNs pushes: test the push certificate and a token, see a device's pushes.")

    @app.command("test")
    def test_push(
        ctx: typer.Context,
        token: Annotated[str, typer.Argument(help="The device token, hex, as the device sent it in TokenUpdate.")],
        magic: Annotated[
            str | None, typer.Option("--magic", help="The device's PushMagic; a random one if not given.")
        ] = None,
        json_output: JSONOption = False,
    ) -> None:
        """Send one push to TOKEN now with the stored push certificate, and show APNs's answer."""
        context = cli_context(ctx)
        sender = open_sender(context.settings)
        try:
            answer = probe.send_test_push(
                context.session_factory,
                token=token,
                push_magic=magic,
                settings=context.settings,
                sender=sender,
                load_identity=certificate(context),
                actor=cli_actor(),
            )
        finally:
            sender.close()
        if json_output:
            print_json(answer)
        else:
            _show_test(answer)

    @app.command("status")
    def status(
        ctx: typer.Context,
        udid: Annotated[str, typer.Argument(help="The enrollment's UDID.")],
        json_output: JSONOption = False,
    ) -> None:
        """Show an enrollment's pushes: its token, the push waiting, the last answer and the counts."""
        context = cli_context(ctx)
        with read_transaction(context.session_factory) as session:
            found = get_push_status(session, udid=udid)
        if json_output:
            print_json(found)
        else:
            _show_status(found)

    return app


app = create_push_app()
