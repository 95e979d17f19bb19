"""`pippin profiles`: enrollment profiles (the seed's step 5) and their assignment to devices at Apple.

Each command calls :mod:`pippin.dep.profiles` or :mod:`pippin.dep.assignment` in one transaction; commands that
queue devices then send what is due to Apple (one transaction per batch), unless told to only queue.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.table import Table
from rich.text import Text

from pippin.cli.audit import cli_actor
from pippin.cli.context import CLIContext, cli_context
from pippin.cli.files import shown_path
from pippin.cli.output import print_json, stdout
from pippin.cli.profile_setup_commands import app as setup_commands_app
from pippin.dep import assignment as assignment_service
from pippin.dep import assignment_runner
from pippin.dep import profiles as profile_service
from pippin.dep.profile_schemas import AssignmentRunRead, ProfileCreate, ProfileRead, ProfileUpdate
from pippin.dep.setup_panes import PANES, get_pane
from pippin.dep.token import dep_client_factory
from pippin.errors import InvalidInput
from pippin.store.db import read_transaction, transaction
from pippin.store.models import UserAffinity

_Input = TypeVar("_Input", bound=BaseModel)
#: The option that sets each field, where its name is not the field's with dashes.
_OPTION_FOR = {
    "name": "NAME/--name",
    "user_affinity": "--user-affinity",
    "await_device_configured": "--await-configured",
    "auto_advance_setup": "--auto-advance",
    "anchor_certs": "--anchor-cert",
    "skip_setup_items": "--skip/--show",
}

app = typer.Typer(help="Enrollment profiles: Setup Assistant, supervision, and which devices get them.")

JSONOption = Annotated[bool, typer.Option("--json", help="Print JSON with the REST API's keys.")]
MAX_CERTIFICATE_FILE = 64 * 1024

Description = Annotated[str | None, typer.Option(help="A note for admins (not sent to Apple).")]
Affinity = Annotated[
    UserAffinity | None, typer.Option("--user-affinity", help="with_user: the user signs in during setup.")
]
Supervised = Annotated[bool | None, typer.Option("--supervised/--no-supervised", help="Supervise the device.")]
Locked = Annotated[bool | None, typer.Option("--locked/--removable", help="Locked: the user cannot remove management.")]
Mandatory = Annotated[bool | None, typer.Option("--mandatory/--optional", help="The user cannot skip enrollment.")]
Pairing = Annotated[bool | None, typer.Option("--allow-pairing/--no-pairing", help="Pairing with computers.")]
AwaitConfigured = Annotated[
    bool | None, typer.Option("--await-configured/--no-await-configured", help="Hold setup until configured.")
]
AutoAdvance = Annotated[bool | None, typer.Option("--auto-advance/--no-auto-advance", help="tvOS and macOS only.")]
Department = Annotated[str | None, typer.Option(help="Shown during setup (at most 125 characters).")]
SupportPhone = Annotated[str | None, typer.Option("--support-phone", help="At most 50 characters.")]
SupportEmail = Annotated[str | None, typer.Option("--support-email", help="At most 250 characters.")]
OrgMagic = Annotated[str | None, typer.Option("--org-magic", help="Apple's org_magic (at most 256).")]
Language = Annotated[str | None, typer.Option(help="ISO 639 code, e.g. en (tvOS, macOS).")]
Region = Annotated[str | None, typer.Option(help="ISO 3166 code, e.g. US (tvOS, macOS).")]
AnchorCerts = Annotated[
    list[Path] | None, typer.Option("--anchor-cert", help="A certificate file (PEM or DER) to trust; repeatable.")
]
Skip = Annotated[
    list[str] | None, typer.Option("--skip", help="A Setup Assistant pane to hide, e.g. Siri; repeatable.")
]
Show = Annotated[list[str] | None, typer.Option("--show", help="A Setup Assistant pane to show again; repeatable.")]
MinimumOS = Annotated[
    str | None,
    typer.Option(
        "--minimum-os-version",
        help="The OS version a device must run to enroll, e.g. 17.4; an older one that can update (iOS 17+) is "
        "told to first. Pippin's own policy: not sent to Apple, and changing it keeps the revision.",
    ),
]
QueueOnly = Annotated[bool, typer.Option("--queue-only", help="Only queue; `retry-due` or the next sync sends.")]


def _parse(schema: type[_Input], fields: dict[str, Any]) -> _Input:
    """The command's options as the service's input; a refused value names its option and the rule."""
    try:
        return schema.model_validate(fields)
    except ValidationError as invalid:
        problems = []
        for item in invalid.errors()[:5]:
            field = str(item["loc"][0]) if item.get("loc") else "?"
            option = _OPTION_FOR.get(field, "--" + field.replace("_", "-"))
            problems.append(f"{option}: {str(item.get('msg', '')).removeprefix('Value error, ')}")
        raise InvalidInput("; ".join(problems) + ".", hint="Correct the option and run the command again.") from None


def _read_certificates(paths: list[Path]) -> list[str]:
    """Each file as text (PEM) or as base64 of its bytes (DER); the service checks they are certificates."""
    certificates: list[str] = []
    for path in paths:
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_CERTIFICATE_FILE + 1)
        except (OSError, ValueError) as error:  # ValueError: a NUL in the path
            reason = error.strerror if isinstance(error, OSError) and error.strerror else "not a possible file name"
            raise InvalidInput(f"Cannot read {shown_path(path)}: {reason}.") from None
        if len(data) > MAX_CERTIFICATE_FILE:
            raise InvalidInput(f"{shown_path(path)} is larger than {MAX_CERTIFICATE_FILE:,} bytes.")
        pem = b"-----BEGIN CERTIFICATE-----" in data
        certificates.append(data.decode("ascii", "replace") if pem else base64.b64encode(data).decode())
    return certificates


def _send(context: CLIContext, *, token_id: int | None = None) -> AssignmentRunRead:
    settings = context.settings
    box = context.secret_box
    return assignment_runner.run_due_assignments(
        context.session_factory,
        settings=settings,
        box=box,
        open_client=dep_client_factory(box=box, settings=settings),
        token_id=token_id,
    )


def _print_run(run: AssignmentRunRead) -> None:
    stdout.print(
        f"sent {run.sent} devices in {run.batches} batches ({run.apple_calls} Apple calls): {run.assigned} assigned, "
        f"{run.failed} failed (retried in 24 hours), {run.throttled} throttled, {run.not_accessible} not accessible"
        + (f", {run.unanswered} unanswered" if run.unanswered else "")
        + (f"; {run.confirmed} found assigned at Apple after an interrupted send" if run.confirmed else ""),
        markup=False,
    )
    for error in run.errors:
        stdout.print(Text(f"not sent: {error}", style="red"))
    if run.still_due:
        stdout.print(
            f"{run.still_due} devices are still waiting; `pippin profiles retry-due` sends them.", markup=False
        )


def _print_profile(profile: ProfileRead) -> None:
    def flag(value: bool) -> str:
        return "yes" if value else "no"

    rows: list[tuple[str, str]] = [
        ("name", profile.name),
        ("description", profile.description or "-"),
        ("revision", str(profile.revision)),
        ("user affinity", profile.user_affinity.value),
        ("supervised", flag(profile.supervised)),
        ("locked", flag(profile.locked)),
        ("mandatory", flag(profile.mandatory)),
        ("allow pairing", flag(profile.allow_pairing)),
        ("await configured", flag(profile.await_device_configured)),
        ("department", profile.department or "-"),
        ("support", " ".join(filter(None, [profile.support_phone, profile.support_email])) or "-"),
        ("language / region", f"{profile.language or '-'} / {profile.region or '-'}"),
        ("minimum OS version", profile.minimum_os_version or "any"),
        ("MDM URL", profile.url),
        ("sign-in URL", profile.configuration_web_url or "-"),
        ("anchor certificates", ", ".join(c.subject for c in profile.anchor_certs) or "-"),
        ("default for", ", ".join(profile.default_for_tokens) or "-"),
    ]
    counts = profile.devices
    rows.append(
        (
            "devices",
            f"{counts.assigned} assigned, {counts.pending} pending, {counts.failed} failed, "
            f"{counts.throttled} throttled, {counts.not_accessible} not accessible",
        )
    )
    for definition in profile.definitions:
        rows.append((f"at Apple ({definition.token}, rev {definition.revision})", definition.profile_uuid))
    table = Table(show_header=False, box=None)
    for key, value in rows:
        table.add_row(Text(key, style="bold"), Text(value))
    stdout.print(table)
    panes = Table("Setup Assistant pane", "key", "shown", "platforms")
    for pane in profile.setup_panes:
        panes.add_row(Text(pane.name), Text(pane.key), "shown" if pane.shown else Text("hidden", "dim"), pane.platforms)
    stdout.print(panes)


@app.command("panes")
def list_panes(json_output: JSONOption = False) -> None:
    """List the Setup Assistant panes a profile can hide, with Apple's keys."""
    if json_output:
        print_json([{"key": p.key, "name": p.name, "platforms": p.platforms, "note": p.note} for p in PANES])
        return
    table = Table("key", "pane", "platforms", "note")
    for pane in PANES:
        table.add_row(pane.key, pane.name, pane.platforms, pane.note or "")
    stdout.print(table)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Shown on the device during setup.")],
    description: Description = None,
    user_affinity: Affinity = None,
    supervised: Supervised = None,
    locked: Locked = None,
    mandatory: Mandatory = None,
    allow_pairing: Pairing = None,
    await_configured: AwaitConfigured = None,
    auto_advance: AutoAdvance = None,
    department: Department = None,
    support_phone: SupportPhone = None,
    support_email: SupportEmail = None,
    org_magic: OrgMagic = None,
    language: Language = None,
    region: Region = None,
    anchor_cert: AnchorCerts = None,
    skip: Skip = None,
    minimum_os_version: MinimumOS = None,
    json_output: JSONOption = False,
) -> None:
    """Create an enrollment profile; it is defined at Apple when first assigned."""
    context = cli_context(ctx)
    fields: dict[str, Any] = {
        "name": name,
        "description": description,
        "user_affinity": user_affinity,
        "supervised": supervised,
        "locked": locked,
        "mandatory": mandatory,
        "allow_pairing": allow_pairing,
        "await_device_configured": await_configured,
        "auto_advance_setup": auto_advance,
        "department": department,
        "support_phone": support_phone,
        "support_email": support_email,
        "org_magic": org_magic,
        "language": language,
        "region": region,
        "anchor_certs": _read_certificates(anchor_cert or []),
        "skip_setup_items": skip or [],
        "minimum_os_version": minimum_os_version,
    }
    data = _parse(ProfileCreate, {key: value for key, value in fields.items() if value is not None})
    with transaction(context.session_factory) as session:
        profile = profile_service.create_profile(session, data=data, settings=context.settings, actor=cli_actor())
    if json_output:
        print_json(profile)
        return
    stdout.print(f"created profile {profile.name!r}", markup=False)


@app.command("list")
def list_profiles(ctx: typer.Context, json_output: JSONOption = False) -> None:
    """List the enrollment profiles and how many devices have each."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        found = profile_service.list_profiles(session, settings=context.settings)
    if json_output:
        print_json([profile.model_dump(mode="json") for profile in found])
        return
    table = Table("name", "revision", "user affinity", "supervised", "locked", "hidden panes", "assigned", "waiting")
    for profile in found:
        counts = profile.devices
        table.add_row(
            Text(profile.name),
            str(profile.revision),
            profile.user_affinity.value,
            "yes" if profile.supervised else "no",
            "yes" if profile.locked else "no",
            str(len(profile.skip_setup_items)),
            str(counts.assigned),
            str(counts.pending + counts.failed + counts.throttled),
        )
    stdout.print(table)


@app.command("show")
def show(ctx: typer.Context, name: str, json_output: JSONOption = False) -> None:
    """Show a profile: every field, every Setup Assistant pane shown or hidden, its definitions at Apple."""
    context = cli_context(ctx)
    with read_transaction(context.session_factory) as session:
        profile = profile_service.read_profile(session, name=name, settings=context.settings)
    if json_output:
        print_json(profile)
        return
    _print_profile(profile)


@app.command("edit")
def edit(
    ctx: typer.Context,
    name: str,
    new_name: Annotated[str | None, typer.Option("--name", help="Rename the profile.")] = None,
    description: Description = None,
    user_affinity: Affinity = None,
    supervised: Supervised = None,
    locked: Locked = None,
    mandatory: Mandatory = None,
    allow_pairing: Pairing = None,
    await_configured: AwaitConfigured = None,
    auto_advance: AutoAdvance = None,
    department: Department = None,
    support_phone: SupportPhone = None,
    support_email: SupportEmail = None,
    org_magic: OrgMagic = None,
    language: Language = None,
    region: Region = None,
    anchor_cert: AnchorCerts = None,
    clear_anchor_certs: Annotated[
        bool, typer.Option("--clear-anchor-certs", help="Trust no extra certificate.")
    ] = False,
    skip: Skip = None,
    show: Show = None,
    minimum_os_version: MinimumOS = None,
    clear_minimum_os_version: Annotated[
        bool, typer.Option("--clear-minimum-os-version", help="Let devices of any OS version enroll.")
    ] = False,
    queue_only: QueueOnly = False,
    json_output: JSONOption = False,
) -> None:
    """Change a profile. Apple's profiles cannot change, so it is defined anew and sent to every device that had it
    (a change of only the description or the minimum OS version is Pippin's alone, and keeps the revision)."""
    context = cli_context(ctx)
    changes: dict[str, Any] = {
        key: value
        for key, value in {
            "name": new_name,
            "description": description,
            "user_affinity": user_affinity,
            "supervised": supervised,
            "locked": locked,
            "mandatory": mandatory,
            "allow_pairing": allow_pairing,
            "await_device_configured": await_configured,
            "auto_advance_setup": auto_advance,
            "department": department,
            "support_phone": support_phone,
            "support_email": support_email,
            "org_magic": org_magic,
            "language": language,
            "region": region,
            "minimum_os_version": minimum_os_version,
        }.items()
        if value is not None
    }
    if clear_minimum_os_version:
        if minimum_os_version is not None:
            raise InvalidInput("Give --minimum-os-version or --clear-minimum-os-version, not both.")
        changes["minimum_os_version"] = None
    shown = {get_pane(text).key for text in show or []}
    hidden = {get_pane(text).key for text in skip or []}
    if shown & hidden:
        raise InvalidInput(f"{', '.join(sorted(shown & hidden))} cannot be both shown and hidden.")
    with transaction(context.session_factory) as session:
        current = profile_service.read_profile(session, name=name, settings=context.settings)
        if shown or hidden:
            changes["skip_setup_items"] = sorted((set(current.skip_setup_items) | hidden) - shown)
        if clear_anchor_certs or anchor_cert:
            changes["anchor_certs"] = _read_certificates(anchor_cert or [])
        profile = profile_service.update_profile(
            session, name=name, changes=_parse(ProfileUpdate, changes), settings=context.settings, actor=cli_actor()
        )
    run = None if queue_only or profile.revision == current.revision else _send(context)
    if json_output:
        print_json({"profile": profile.model_dump(mode="json"), "sent": run.model_dump(mode="json") if run else None})
        return
    if profile.revision == current.revision:
        stdout.print(f"updated profile {profile.name!r}; Apple sees no change", markup=False)
        return
    stdout.print(f"updated profile {profile.name!r} to revision {profile.revision}", markup=False)
    if run is not None:
        _print_run(run)


@app.command("delete")
def delete(ctx: typer.Context, name: str) -> None:
    """Delete a profile no device and no token uses."""
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        profile_service.delete_profile(session, name=name, actor=cli_actor())
    stdout.print(f"deleted profile {name!r}", markup=False)


@app.command("set-default")
def set_default(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(help="The DEP token.")],
    profile: Annotated[str | None, typer.Argument(help="The profile its new devices get.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Give new devices no profile.")] = False,
) -> None:
    """Choose the profile a token's newly synced devices get (and devices without one, at the next sync)."""
    if (profile is None) == (not clear):
        raise InvalidInput("Name a profile, or give --clear.", hint="pippin profiles set-default TOKEN PROFILE")
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        profile_service.set_default_profile(session, token_name=token, profile_name=profile, actor=cli_actor())
    if profile is None:
        stdout.print(f"new devices of {token!r} get no profile", markup=False)
    else:
        stdout.print(f"new devices of {token!r} get {profile!r} at each sync", markup=False)


@app.command("assign")
def assign(
    ctx: typer.Context,
    profile: str,
    serials: Annotated[list[str] | None, typer.Argument(help="Serial numbers (case-sensitive).")] = None,
    all_unassigned: Annotated[bool, typer.Option("--all-unassigned", help="Every device without a profile.")] = False,
    token: Annotated[str | None, typer.Option("--token", help="Every device of this DEP token.")] = None,
    queue_only: QueueOnly = False,
    json_output: JSONOption = False,
) -> None:
    """Give devices a profile at Apple, in batches of 1000, and report each outcome."""
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        queued = assignment_service.queue_assignment(
            session,
            profile_name=profile,
            serials=serials or [],
            all_unassigned=all_unassigned,
            token_name=token,
            actor=cli_actor(),
        )
    run = None if queue_only else _send(context)
    if json_output:
        print_json({"queued": queued.model_dump(mode="json"), "sent": run.model_dump(mode="json") if run else None})
        return
    stdout.print(
        f"queued {queued.queued} devices for {queued.profile!r} (revision {queued.revision}); "
        f"{queued.unchanged} already had it"
        + (f"; {queued.cooling_down} wait for Apple's cooldown" if queued.cooling_down else ""),
        markup=False,
    )
    if run is not None:
        _print_run(run)


@app.command("retry-due")
def retry_due(
    ctx: typer.Context,
    token: Annotated[str | None, typer.Option("--token", help="Only this DEP token's devices.")] = None,
    json_output: JSONOption = False,
) -> None:
    """Send the assignments that are due: queued ones, and failed or throttled ones whose wait is over."""
    context = cli_context(ctx)
    with transaction(context.session_factory) as session:
        request = assignment_runner.request_due_send(session, actor=cli_actor(), token_name=token)
    run = _send(context, token_id=request.token_id)
    if json_output:
        print_json(run)
        return
    _print_run(run)


app.add_typer(setup_commands_app, name="setup-commands")
