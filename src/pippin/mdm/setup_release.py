"""Releasing a device from Setup Assistant: its profile's enrollment-time commands, then DeviceConfigured.

Reference ``apple-mdm-protocol.md`` section 1 step 5 and the 2026 updates (section 2 item 3: devices stuck
awaiting configuration). A device whose DEP profile awaits configuration says so in its TokenUpdate
(``AwaitingConfiguration``) and stays in Setup Assistant until the server sends DeviceConfigured.

- :func:`start_release` (from ``mdm/checkin.py``'s TokenUpdate, in its transaction): at the first TokenUpdate of an
  enrollment that awaits configuration, its profile's commands (``mdm/setup_commands.py``) are queued in order,
  under CommandUUIDs derived from the enrollment and the command, so a repeated TokenUpdate queues nothing twice;
  with none, DeviceConfigured is queued at once. The queue records the push wanted, sent after the commit.
  The device's word decides: a device that reports it awaits configuration is released, even when its profile has
  stopped awaiting since (or it has none), since nothing else would ever release it.
- :func:`note_answer` (from ``mdm/connect.py``, after an answer is stored): once every command has been answered,
  DeviceConfigured is queued, once. A command the device refused does not hold the device back: Apple's device
  would wait in Setup Assistant forever, and an admin would rather have it in use and fix the profile; the failure
  is kept as the device's problem (:func:`setup_problems`). NotNow keeps waiting, as the queue does.
- :func:`setup_problems` (for the device views): a device still awaiting configuration ``PIPPIN_SETUP_STUCK_AFTER``
  after its TokenUpdate, with the step it waits on; and any failure on the way. A page's worth in two queries.

A command canceled or expired counts as finished when the next answer comes; a last command canceled leaves the
device waiting, and its problem says so (``pippin devices command SERIAL DeviceConfigured`` releases it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pippin.admin.actor import Actor, Interface
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.errors import Conflict, InvalidInput
from pippin.mdm.command_catalog import build_command
from pippin.mdm.command_queue import enqueue_command
from pippin.mdm.commands.schema import CommandRejected
from pippin.mdm.setup_commands import DeviceNameFacts, setup_command_of
from pippin.mdm.setup_schemas import SetupProblemKind, SetupProblemRead, SetupWatch
from pippin.store.models import (
    WAITING,
    Command,
    CommandStatus,
    Device,
    DirectoryUser,
    Enrollment,
    EnrollmentStatus,
    SetupCommand,
    SetupRelease,
)

__all__ = ["RELEASE_ACTOR", "note_answer", "setup_problems", "start_release"]

#: Who the queue records as having queued the release's commands.
RELEASE_ACTOR = Actor(name="pippin (setup release)", interface=Interface.system)
#: The namespace of the release's CommandUUIDs (uuid5 of the enrollment, its identity and the step).
_NAMESPACE = uuid.UUID("5b0f3c1e-6a2d-4f7e-9c8b-1d2e3f4a5b6c")
_CONFIGURED = "DeviceConfigured"
_MAX_FAILURE_CHARS = 4000
_MAX_ERROR_TEXT = 300
_BY_HAND = "`pippin devices command SERIAL DeviceConfigured`"


def _command_uuid(enrollment: Enrollment, step: str) -> str:
    name = f"{enrollment.udid}/{enrollment.identity_fingerprint}/{step}"
    return str(uuid.uuid5(_NAMESPACE, name)).upper()


def _facts(session: Session, enrollment: Enrollment) -> DeviceNameFacts:
    model = asset_tag = None
    if enrollment.device_id is not None:
        row = session.execute(
            select(Device.model, Device.asset_tag).where(Device.id == enrollment.device_id)
        ).one_or_none()
        if row is not None:
            model, asset_tag = row
    user = None
    if enrollment.primary_user_id is not None:
        user = session.scalar(select(DirectoryUser.username).where(DirectoryUser.id == enrollment.primary_user_id))
    return DeviceNameFacts(
        serial=enrollment.serial_number,
        udid=enrollment.udid,
        model=model or enrollment.product_name,
        product=enrollment.product_name,
        os_version=enrollment.os_version,
        asset_tag=asset_tag,
        user=user,
    )


def _add_failure(release: SetupRelease, text: str) -> None:
    joined = text if not release.failure else f"{release.failure}; {text}"
    release.failure = joined[:_MAX_FAILURE_CHARS]


def _queue_configured(
    session: Session,
    release: SetupRelease,
    enrollment: Enrollment,
    *,
    box: SecretBox,
    settings: Settings,
    now: datetime,
) -> None:
    command_uuid = _command_uuid(enrollment, "configured")
    enqueue_command(
        session,
        udid=enrollment.udid,
        queued=build_command(_CONFIGURED, {}),
        box=box,
        settings=settings,
        now=now,
        actor=RELEASE_ACTOR,
        command_uuid=command_uuid,
    )
    release.configured_uuid = command_uuid


def start_release(
    session: Session,
    enrollment: Enrollment,
    *,
    awaiting: bool | None,
    box: SecretBox,
    settings: Settings,
    now: datetime,
) -> None:
    """At a TokenUpdate: queue the enrollment's setup commands, or DeviceConfigured, if this is the first
    TokenUpdate of this enrollment awaiting configuration. In the caller's transaction; commits nothing."""
    if not awaiting or enrollment.identity_fingerprint is None or enrollment.status is not EnrollmentStatus.enrolled:
        return
    release = session.get(SetupRelease, enrollment.udid, with_for_update=True)
    if release is not None and release.identity_fingerprint == enrollment.identity_fingerprint:
        return  # started by an earlier TokenUpdate of this enrollment
    if release is None:
        release = SetupRelease(udid=enrollment.udid)
        session.add(release)
    release.identity_fingerprint = enrollment.identity_fingerprint
    release.profile_id = enrollment.profile_id
    release.started_at = now
    release.configured_uuid = release.released_at = release.failure = None
    steps: list[dict[str, str]] = []
    commands = (
        session.scalars(
            select(SetupCommand).where(SetupCommand.profile_id == enrollment.profile_id).order_by(SetupCommand.id)
        ).all()
        if enrollment.profile_id is not None
        else []
    )
    facts = _facts(session, enrollment) if commands else DeviceNameFacts()
    for position, command in enumerate(commands, 1):
        try:
            queued = setup_command_of(command, facts, box=box)
        except CommandRejected as rejected:
            _add_failure(release, f"step {position} ({command.label}) could not be sent: {rejected.message}")
            continue
        command_uuid = _command_uuid(enrollment, f"step-{command.id}")
        try:
            enqueue_command(
                session,
                udid=enrollment.udid,
                queued=queued,
                box=box,
                settings=settings,
                now=now,
                actor=RELEASE_ACTOR,
                command_uuid=command_uuid,
            )
        except (InvalidInput, Conflict) as refused:  # never the TokenUpdate's refusal: the device is enrolled
            _add_failure(release, f"step {position} ({command.label}) could not be queued: {refused.message}")
            continue
        steps.append({"uuid": command_uuid, "request_type": queued.request_type, "label": command.label})
    release.steps = steps
    if not steps:
        _queue_configured(session, release, enrollment, box=box, settings=settings, now=now)
    session.flush()


def _error_text(chain: list[dict[str, Any]] | None) -> str:
    if not chain:
        return "the device answered with an error and no ErrorChain"
    parts = []
    for entry in chain[:3]:
        said = entry.get("USEnglishDescription") or entry.get("LocalizedDescription") or "no description"
        where = " ".join(str(entry[key]) for key in ("ErrorDomain", "ErrorCode") if key in entry)
        parts.append(f"{said} ({where})" if where else str(said))
    text = "; ".join(parts)
    return "".join(char for char in text if char.isprintable())[:_MAX_ERROR_TEXT]


def _step_name(position: int, step: dict[str, str]) -> str:
    return f"step {position} ({step.get('request_type', '?')} {step.get('label', '')})".replace(" )", ")")


def note_answer(
    session: Session,
    enrollment: Enrollment,
    *,
    command_uuid: str | None,
    box: SecretBox,
    settings: Settings,
    now: datetime,
) -> None:
    """After the device's answer to ``command_uuid`` was stored: record a failed step, queue DeviceConfigured
    once every step is answered, mark the device released when DeviceConfigured is acknowledged. In the caller's
    transaction; one primary-key read for an answer that is not the release's."""
    if not command_uuid:
        return
    release = session.get(SetupRelease, enrollment.udid, with_for_update=True)
    if (
        release is None
        or release.released_at is not None
        or release.identity_fingerprint != enrollment.identity_fingerprint
    ):
        return
    uuids = [step["uuid"] for step in release.steps]
    if command_uuid != release.configured_uuid and (command_uuid not in uuids or release.configured_uuid is not None):
        return
    rows = {
        row.command_uuid: row
        for row in session.execute(
            select(Command.command_uuid, Command.status, Command.error_chain).where(
                Command.command_uuid.in_([*uuids, command_uuid])
            )
        )
    }
    answered = rows.get(command_uuid)
    if command_uuid == release.configured_uuid:
        if answered is not None and answered.status is CommandStatus.acknowledged:
            release.released_at = now
            enrollment.awaiting_configuration = False
        elif answered is not None and answered.status is CommandStatus.error:
            _add_failure(release, f"DeviceConfigured failed: {_error_text(answered.error_chain)}")
        session.flush()
        return
    if answered is not None and answered.status is CommandStatus.error:
        position = uuids.index(command_uuid) + 1
        step = release.steps[position - 1]
        _add_failure(release, f"{_step_name(position, step)} failed: {_error_text(answered.error_chain)}")
    if all(uuid_ in rows and rows[uuid_].status not in WAITING for uuid_ in uuids):
        _queue_configured(session, release, enrollment, box=box, settings=settings, now=now)
    session.flush()


def _waiting_on(command: Any, name: str) -> str:
    """What the device's release waits on at ``command`` (a row of uuid, status, deliveries, NotNow count)."""
    if command is None:
        return f"{name} is no longer in the queue (pruned); send DeviceConfigured by hand ({_BY_HAND})"
    status = command.status
    if status is CommandStatus.queued and not command.deliveries:
        return f"{name} not yet fetched by the device"
    if status in (CommandStatus.queued, CommandStatus.sent):
        return f"{name} handed to the device {command.deliveries} times, no answer yet"
    if status is CommandStatus.not_now:
        return f"{name} answered NotNow {command.not_now_count} times"
    if status is CommandStatus.error:
        return f"{name} failed: {_error_text(command.error_chain)}"
    return (
        f"{name} was {status.value}; send DeviceConfigured by hand (`pippin devices command SERIAL DeviceConfigured`)"
    )


def _stuck_reason(release: Any, commands: dict[str, Any]) -> str:
    """What the stuck device waits on; ``release`` is a row of the release's columns, or None."""
    if release is None:
        return (
            "Pippin queued no DeviceConfigured for this enrollment (it enrolled before releases were automatic); "
            f"send it by hand ({_BY_HAND})"
        )
    for position, step in enumerate(release.steps, 1):
        command = commands.get(step["uuid"])
        if command is None or command.status in WAITING:
            return _waiting_on(command, _step_name(position, step))
    if release.configured_uuid is None:
        # Every step finished without the answer that queues DeviceConfigured: one was canceled or expired.
        for position, step in enumerate(release.steps, 1):
            command = commands.get(step["uuid"])
            if command is None or command.status in (CommandStatus.canceled, CommandStatus.expired):
                return _waiting_on(command, _step_name(position, step))
        return "DeviceConfigured is not queued yet"
    return _waiting_on(commands.get(release.configured_uuid), "DeviceConfigured")


def setup_problems(session: Session, udids: Sequence[str], *, watch: SetupWatch) -> dict[str, SetupProblemRead]:
    """The setup problem of each enrollment of ``udids`` that has one: stuck past ``watch.stuck_after``, or a
    failure on the way. Two queries whatever the number of enrollments (a page of the device list)."""
    wanted = [udid for udid in dict.fromkeys(udids) if udid]
    if not wanted:
        return {}
    # Columns, not ORM objects: a page's worth of rows is read, never changed here.
    rows = session.execute(
        select(
            Enrollment.udid,
            Enrollment.status,
            Enrollment.awaiting_configuration,
            Enrollment.identity_fingerprint,
            Enrollment.enrolled_at,
            SetupRelease.identity_fingerprint.label("release_fingerprint"),
            SetupRelease.started_at,
            SetupRelease.steps,
            SetupRelease.configured_uuid,
            SetupRelease.released_at,
            SetupRelease.failure,
        )
        .outerjoin(SetupRelease, SetupRelease.udid == Enrollment.udid)
        .where(
            Enrollment.udid.in_(wanted),
            or_(Enrollment.awaiting_configuration.is_(True), SetupRelease.failure.is_not(None)),
        )
    ).all()
    candidates: list[tuple[str, Any, datetime | None, bool]] = []
    for row in rows:
        # The release of this enrollment round, or none (an older round's, or none started).
        current = (
            row if row.release_fingerprint is not None and row.release_fingerprint == row.identity_fingerprint else None
        )
        since = current.started_at if current is not None else row.enrolled_at
        stuck = (
            bool(row.awaiting_configuration)
            and row.status is EnrollmentStatus.enrolled
            and (current is None or current.released_at is None)
            and since is not None
            and watch.now - since >= watch.stuck_after
        )
        if stuck or (current is not None and current.failure):
            candidates.append((row.udid, current, since, stuck))
    uuids = [
        uuid_
        for _, current, _, stuck in candidates
        if stuck and current is not None
        for uuid_ in [*(step["uuid"] for step in current.steps), current.configured_uuid]
        if uuid_
    ]
    commands: dict[str, Any] = {}
    if uuids:
        found = session.execute(
            select(
                Command.command_uuid, Command.status, Command.deliveries, Command.not_now_count, Command.error_chain
            ).where(Command.command_uuid.in_(uuids))
        )
        commands = {row.command_uuid: row for row in found}
    problems: dict[str, SetupProblemRead] = {}
    for udid, release, since, stuck in candidates:
        failure = release.failure if release is not None else None
        if stuck:
            reason = "Still in Setup Assistant: " + _stuck_reason(release, commands)
            if failure:
                reason += f"; earlier: {failure}"
            problems[udid] = SetupProblemRead(kind=SetupProblemKind.stuck, reason=reason, awaiting_since=since)
        elif failure:
            released = release is not None and release.released_at is not None
            reason = ("Released from Setup Assistant, but " if released else "") + failure
            problems[udid] = SetupProblemRead(kind=SetupProblemKind.failed, reason=reason, awaiting_since=since)
    return problems
