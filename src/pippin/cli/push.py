"""`pippin push`: the organisation's MDM push certificate (seed step 1): request, vendor certificate, upload, status;
and pushes: a test push to a raw token, and one enrollment's pushes.

Each command is one call into ``pippin.push`` inside one transaction; nothing here decides anything. The group is
built by :func:`create_push_app` with the certificate store and the APNs client the push commands use (tests pass
their own).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table
from rich.text import Text

from pippin.cli.audit import cli_actor
from pippin.cli.context import CLIContext, cli_context
from pippin.cli.files import shown_path, written_after_commit
from pippin.cli.output import cell, print_json, stderr, stdout
from pippin.config import Settings
from pippin.dep.schemas import ExpiryLevel
from pippin.errors import InvalidInput
from pippin.push import certificate as certificate_service
from pippin.push import probe
from pippin.push import request as request_service
from pippin.push import status as status_service
from pippin.push import vendor as vendor_service
from pippin.push.apns import APNsClient
from pippin.push.delivery import IdentityLoader, PushSender
from pippin.push.device_status import get_device_push_status
from pippin.push.schemas import PushCertificateRead, PushCertificateStatus, PushStatusRead, PushTestRead, RequestKind
from pippin.store.db import read_transaction, transaction

JSONOption = Annotated[bool, typer.Option("--json", help="Print JSON with the REST API's keys.")]
_STATUS_STYLES = {
    PushCertificateStatus.active: "green",
    PushCertificateStatus.expiring: "yellow",
    PushCertificateStatus.expiring_soon: "bold red",
    PushCertificateStatus.expired: "bold white on red",
    PushCertificateStatus.refused_by_apns: "bold white on red",
}
_LEVEL_STYLES = {
    ExpiryLevel.ok: "green",
    ExpiryLevel.warning: "yellow",
    ExpiryLevel.alarm: "bold red",
    ExpiryLevel.expired: "bold white on red",
}


def _read(path: Path, *, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            # One byte past the limit is enough for the service to refuse it without reading a huge file.
            return handle.read(limit + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a possible file name"
        raise InvalidInput(f"Cannot read {shown_path(path)}: {reason}.", hint=f"Pass the path of {what}.") from None


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        stderr.print(f"[bold yellow]warning:[/] {warning}", markup=True, highlight=False)


def csr(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the request to this file.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
    new_key: Annotated[
        bool,
        typer.Option(
            "--new-key",
            help="Replace the waiting request's key with a new one; a request already given to Apple then leads "
            "nowhere. The active certificate is not affected.",
        ),
    ] = False,
    unsigned: Annotated[
        bool, typer.Option("--unsigned", help="Write the plain CSR even though a vendor certificate is imported.")
    ] = False,
) -> None:
    """Make the organisation's key pair and the request for Apple's Push Certificates Portal (seed step 1).

    With an imported MDM vendor certificate, the request is signed and ready for identity.apple.com; without
    one, this is the plain CSR for a vendor's signing service. Running it again gives the same request (same
    key) until a certificate for it is uploaded, or --new-key.
    """
    context = cli_context(ctx)
    with written_after_commit(output, force=force) as staged, transaction(context.session_factory) as session:
        made = request_service.create_request(
            session,
            box=context.secret_box,
            actor=cli_actor(),
            generate_key=context.generate_key,
            new_key=new_key,
            unsigned=unsigned,
        )
        if staged is not None:
            staged.write(made.content)
    if output is None:
        stdout.print(made.content.decode("ascii"), end="" if made.kind == RequestKind.csr else "\n", markup=False)
    else:
        stderr.print(f"Wrote the {_kind(made.kind)} to {shown_path(output)}.", markup=False)
    if made.reused:
        stderr.print(
            "This is the request made before (same key): Pippin keeps it until the certificate for it is uploaded. "
            "Pass --new-key for a new one.",
            markup=False,
        )
    _warn(made.warnings)
    if made.kind == RequestKind.signed_request:
        stderr.print(
            f"Next, at {status_service.PORTAL}: sign in with the organisation's Apple ID, Create a Certificate (or "
            "Renew the existing one, to keep its topic), upload this file, download the certificate and run "
            "`pippin push upload-cert FILE --apple-id YOUR_APPLE_ID`.",
            markup=False,
        )


def _kind(kind: RequestKind) -> str:
    return "signed request for identity.apple.com" if kind == RequestKind.signed_request else "plain CSR (PEM)"


def import_vendor(
    ctx: typer.Context,
    certificate: Annotated[
        Path, typer.Option("--certificate", help="The MDM vendor certificate (PEM or DER), optionally with its chain.")
    ],
    key: Annotated[Path, typer.Option("--key", help="The vendor certificate's private key (PEM or DER).")],
    chain: Annotated[
        Path | None, typer.Option("--chain", help="Apple's intermediate and root certificates (PEM), if not above.")
    ] = None,
    json_output: JSONOption = False,
) -> None:
    """Import the MDM vendor certificate and key that sign the push certificate request; the key is sealed."""
    limit = vendor_service.MAX_CERTIFICATE_FILE_BYTES
    certificate_data = _read(certificate, limit=limit, what="the MDM vendor certificate")
    key_data = _read(key, limit=limit, what="the vendor certificate's private key")
    chain_data = None if chain is None else _read(chain, limit=limit, what="the vendor certificate's chain")
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        result = vendor_service.import_vendor_certificate(
            session,
            certificate=certificate_data,
            key=key_data,
            chain=chain_data,
            box=context.secret_box,
            actor=cli_actor(),
        )
    _warn(result.warnings)
    if json_output:
        print_json(result)
        return
    vendor = result.vendor
    stdout.print(
        f"Imported the MDM vendor certificate {vendor.subject} (expires {vendor.not_after:%Y-%m-%d}, "
        f"{vendor.days_left} days left; {vendor.chain_length} chain certificates).",
        markup=False,
    )
    stderr.print("Next: `pippin push csr -o request.b64` for the signed request.", markup=False)


def upload_cert(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The push certificate downloaded from identity.apple.com (PEM or DER).")],
    apple_id: Annotated[
        str, typer.Option("--apple-id", help="The Apple ID that created the certificate; it must renew it too.")
    ],
    replace_topic: Annotated[
        bool,
        typer.Option(
            "--replace-topic",
            help="Accept a certificate with another topic than the active one: EVERY enrolled device is orphaned "
            "and must enroll again. Only to start over on purpose.",
        ),
    ] = False,
    json_output: JSONOption = False,
) -> None:
    """Upload the push certificate Apple issued for the request: checked, then active (a renewal keeps the topic)."""
    data = _read(file, limit=certificate_service.MAX_CERTIFICATE_FILE_BYTES, what="the certificate from Apple")
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        result = certificate_service.upload_certificate(
            session,
            data=data,
            apple_id=apple_id,
            box=context.secret_box,
            actor=cli_actor(),
            replace_topic=replace_topic,
        )
    if result.topic_replaced:
        stderr.print("[bold red]The push topic was replaced.[/]", markup=True)
    _warn(result.warnings)
    if json_output:
        print_json(result)
        return
    pushed = result.certificate
    what = "Renewed" if result.renewal else "Activated"
    stdout.print(f"{what} the push certificate for topic {pushed.topic}.", markup=False)
    stdout.print(f"It expires {_expiry(pushed)}; renew it before then as {pushed.apple_id}.", markup=False)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _expiry(pushed: PushCertificateRead) -> str:
    if pushed.not_after is None or pushed.days_left is None:
        return "-"
    left = f"{pushed.days_left} days left" if pushed.days_left >= 0 else f"expired {-pushed.days_left} days ago"
    return f"{pushed.not_after:%Y-%m-%d} ({left})"


def certificate_status(ctx: typer.Context, json_output: JSONOption = False) -> None:
    """The push certificate: status, topic, expiry, the Apple ID to renew with, and the vendor certificate."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        found = status_service.read_status(session)
    if json_output:
        print_json(found)
        return
    # Fold rather than cut: the topic and the fingerprint are copied from here, whole.
    table = Table(Column("field", no_wrap=True), Column("value", overflow="fold"), show_header=False)
    table.add_row("status", cell(found.status.value, style=_STATUS_STYLES.get(found.status, "")))
    if found.refused_reason:
        table.add_row("refused by APNs", cell(f"{_when(found.refused_at)}: {found.refused_reason}"))
    table.add_row("topic", cell(found.topic))
    level_style = _LEVEL_STYLES.get(found.expiry_level, "") if found.expiry_level else ""
    table.add_row("expires", cell(_expiry(found), style=level_style))
    table.add_row("renew as Apple ID", cell(found.apple_id))
    table.add_row("uploaded", cell(_when(found.uploaded_at)))
    table.add_row("fingerprint (SHA-256)", cell(found.fingerprint))
    table.add_row("request waiting since", cell(_when(found.pending_request_at) if found.pending_request_at else None))
    if found.vendor is None:
        table.add_row("vendor certificate", cell("none imported"))
    else:
        vendor = found.vendor
        left = f"{vendor.days_left} days left" if vendor.days_left >= 0 else f"expired {-vendor.days_left} days ago"
        table.add_row("vendor certificate", cell(vendor.subject))
        table.add_row(
            "vendor expires",
            cell(f"{vendor.not_after:%Y-%m-%d} ({left})", style=_LEVEL_STYLES[vendor.expiry_level]),
        )
    stdout.print(table)
    stdout.print(Text(found.next_step))


#: The push certificate in force for a command, from the certificate store, opened with the master key's box.
CertificateSource = Callable[[CLIContext], IdentityLoader]
#: Opens the APNs client for a command (the production one at PIPPIN_APNS_BASE_URL unless a test passes its own).
SenderFactory = Callable[[Settings], PushSender]


def stored_certificate(context: CLIContext) -> IdentityLoader:
    """The certificate store's active push certificate, unsealed with this command's master key."""
    box = context.secret_box
    return lambda session: certificate_service.load_push_identity(session, box=box)


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
    app = typer.Typer(
        help="The MDM push certificate (request it from Apple, upload it, renew it with the same topic) and pushes.",
        no_args_is_help=True,
    )
    vendor_app = typer.Typer(help="The MDM vendor certificate that signs the push certificate request.")
    app.add_typer(vendor_app, name="vendor", no_args_is_help=True)
    app.command("csr")(csr)
    vendor_app.command("import")(import_vendor)
    app.command("upload-cert")(upload_cert)
    app.command("status")(certificate_status)

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

    @app.command("device")
    def device(
        ctx: typer.Context,
        udid: Annotated[str, typer.Argument(help="The enrollment's UDID.")],
        json_output: JSONOption = False,
    ) -> None:
        """Show an enrollment's pushes: its token, the push waiting, the last answer and the counts."""
        context = cli_context(ctx)
        with read_transaction(context.session_factory) as session:
            found = get_device_push_status(session, udid=udid)
        if json_output:
            print_json(found)
        else:
            _show_status(found)

    return app


app = create_push_app()
