"""Admins' commands, from every interface alike: one device by serial number, many devices in batches, the
command list of a device, and canceling a command the device has not fetched.

Each use case builds the command with the catalog (which refuses what Apple's schemas do not allow), queues it
with the queue (which asks for the push in the same transaction) and records the audit event with the actor.
:func:`send_bulk` commits one transaction per batch (like a DEP sync page) and so takes a session factory; the
others take the caller's session and commit nothing. A bulk erase is not queued here: it becomes a request that a
second admin approves (``mdm/command_approvals.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from pippin.admin.audit import Actor, AuditAction, record_event
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.errors import InvalidInput
from pippin.inventory.schemas import DeviceFilters
from pippin.mdm import command_approvals
from pippin.mdm import command_queue as queue_service
from pippin.mdm.command_batches import BatchOutcome, batch_commands, check_bulk_id, queue_batch
from pippin.mdm.command_catalog import build_command
from pippin.mdm.command_schemas import BulkCommandQueued, CommandQueued, CommandRead
from pippin.mdm.command_targets import filter_targets, find_targets, get_enrollment_udid, get_target
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import Enrollment
from pippin.text import check_text

#: Devices queued per transaction: a batch's rows and pushes commit together, and a long run shows progress.
BATCH = 1000
#: Told how many devices are queued so far, of how many, after each batch.
Progress = Callable[[int, int], None]
MAX_LIST = 1000
_CLEAR_PASSCODE = "ClearPasscode"


def _unlock_token(session: Session, *, udid: str, box: SecretBox) -> bytes:
    """The UnlockToken the device gave at TokenUpdate, which ClearPasscode must carry (reference section 3)."""
    enrollment = session.get(Enrollment, udid)
    if enrollment is None or enrollment.unlock_token_encrypted is None:
        raise InvalidInput(
            "The device never gave Pippin an unlock token, so its passcode cannot be cleared.",
            hint="iOS sends one at enrollment only when the device is supervised; erase it instead.",
        )
    return box.decrypt(enrollment.unlock_token_encrypted)


def send_command(
    session: Session,
    *,
    serial: str,
    request_type: str,
    payload: Mapping[str, object],
    box: SecretBox,
    settings: Settings,
    now: datetime,
    actor: Actor,
    expires_in: timedelta | None = None,
) -> CommandQueued:
    """Queue one command for the enrolled device with this serial number, checked against what it reported;
    ``expires_in`` overrides ``PIPPIN_COMMAND_EXPIRATION`` for it."""
    target = get_target(session, serial=serial)
    if request_type == _CLEAR_PASSCODE and "UnlockToken" not in payload:
        payload = {**payload, "UnlockToken": _unlock_token(session, udid=target.udid, box=box)}
    queued = build_command(request_type, payload, device=target.facts)
    command = queue_service.enqueue_command(
        session,
        udid=target.udid,
        queued=queued,
        box=box,
        settings=settings,
        now=now,
        actor=actor,
        expires_in=expires_in,
    )
    detail: dict[str, object] = {
        "request_type": queued.request_type,
        "command_uuid": command.command_uuid,
        "destructive": queued.destructive,
    }
    record_event(session, actor=actor, action=AuditAction.command_send, target=serial, detail=detail, now=now)
    return CommandQueued(
        command_uuid=command.command_uuid,
        request_type=command.request_type,
        status=command.status,
        serial_number=target.serial_number,
        udid=target.udid,
    )


def list_device_commands(session: Session, *, serial: str, box: SecretBox, limit: int = 100) -> list[CommandRead]:
    """The device's commands, newest first, with each answer parsed (secrets removed by the queue)."""
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIST}.", hint="Ask for fewer.")
    udid = get_enrollment_udid(session, serial=serial)
    views = queue_service.list_commands(session, udid=udid, box=box, limit=limit)
    return [CommandRead.model_validate(view, from_attributes=True) for view in views]


def cancel_command(
    session: Session, *, serial: str, command_uuid: str, box: SecretBox, now: datetime, actor: Actor
) -> CommandRead:
    """Cancel a command the device has not fetched yet (queued, or waiting after NotNow)."""
    check_text(command_uuid, field="The command UUID")
    udid = get_enrollment_udid(session, serial=serial)
    command = queue_service.cancel_command(session, udid=udid, command_uuid=command_uuid, now=now, actor=actor)
    detail = {"request_type": command.request_type, "command_uuid": command.command_uuid}
    record_event(session, actor=actor, action=AuditAction.command_cancel, target=serial, detail=detail, now=now)
    return CommandRead(
        command_uuid=command.command_uuid,
        request_type=command.request_type,
        status=command.status,
        created_at=command.created_at,
        sent_at=command.sent_at,
        answered_at=command.answered_at,
        finished_at=command.finished_at,
        expires_at=command.expires_at,
        error_chain=command.error_chain,
        response=None,
    )


@dataclass(frozen=True)
class BulkTargets:
    udids: list[str]
    not_enrolled: int
    selection: str


def _selection(serials: Sequence[str] | None, filters: DeviceFilters | None) -> str:
    if serials is not None:
        shown = ", ".join(serials[:5]) + (f" and {len(serials) - 5} more" if len(serials) > 5 else "")
        return f"serials {shown}"[:500]
    assert filters is not None
    given = {"state": filters.state, "token": filters.token, "profile": filters.profile, "search": filters.search}
    return " ".join(f"{key}={value}" for key, value in given.items() if value is not None)[:500]


def _resolve(session: Session, *, serials: Sequence[str] | None, filters: DeviceFilters | None) -> BulkTargets:
    if serials is not None:
        udids = [target.udid for target in find_targets(session, serials=serials)]
        return BulkTargets(udids=list(dict.fromkeys(udids)), not_enrolled=0, selection=_selection(serials, None))
    if filters is None:
        raise InvalidInput(
            "A bulk command needs serial numbers or a filter.", hint="Give --serial or --state, --token, ..."
        )
    found = filter_targets(session, filters=filters)
    return BulkTargets(udids=found.udids, not_enrolled=found.not_enrolled, selection=_selection(None, filters))


def send_bulk(
    session_factory: SessionFactory,
    *,
    request_type: str,
    payload: Mapping[str, object],
    serials: Sequence[str] | None = None,
    filters: DeviceFilters | None = None,
    box: SecretBox,
    settings: Settings,
    clock: Callable[[], datetime],
    actor: Actor,
    batch_size: int = BATCH,
    progress: Progress | None = None,
    bulk_id: str | None = None,
    expires_in: timedelta | None = None,
) -> BulkCommandQueued:
    """Queue one command for many devices, or, for an erase, ask a second admin to approve it.

    Everything is checked (the command, every serial number) before the first batch commits, so a refused
    request queues nothing. Commits one transaction per batch of ``batch_size`` devices; each device's command is
    checked against what it reported, and left out (counted, with the reason) where it does not apply. The same
    ``bulk_id`` given again (a run that stopped half-way, a client retrying) queues only what the first run did not.
    """
    if request_type == _CLEAR_PASSCODE:
        raise InvalidInput(
            "ClearPasscode cannot be sent in bulk: each device's command carries its own unlock token.",
            hint="Send it to each device: `pippin devices command SERIAL ClearPasscode`.",
        )
    queued = build_command(request_type, payload)
    checked_id = check_bulk_id(bulk_id) if bulk_id is not None else None
    with read_transaction(session_factory) as session:
        targets = _resolve(session, serials=serials, filters=filters)
    if command_approvals.needs_approval(queued.request_type):
        with transaction(session_factory) as session:
            approval = command_approvals.request_approval(
                session,
                request_type=queued.request_type,
                payload=payload,
                udids=targets.udids,
                selection=targets.selection,
                box=box,
                now=clock(),
                actor=actor,
            )
        return BulkCommandQueued(
            devices=len(targets.udids), not_enrolled=targets.not_enrolled, bulk_id=None, approval=approval
        )
    chosen_id = checked_id if checked_id is not None else str(uuid.uuid4())
    commands = batch_commands(request_type, payload)
    outcome = BatchOutcome()
    size = min(batch_size, queue_service.BULK_BATCH)
    for start in range(0, len(targets.udids), size):
        batch = targets.udids[start : start + size]
        with transaction(session_factory) as session:
            done = queue_batch(
                session,
                udids=batch,
                request_type=request_type,
                payload=payload,
                box=box,
                settings=settings,
                now=clock(),
                actor=actor,
                bulk_id=chosen_id,
                commands=commands,
                expires_in=expires_in,
            )
            if start == 0:
                detail = {
                    "request_type": queued.request_type,
                    "devices": len(targets.udids),
                    "selection": targets.selection,
                    "bulk_id": chosen_id,
                }
                record_event(session, actor=actor, action=AuditAction.command_send_bulk, detail=detail, now=clock())
        outcome.add(done)
        if progress is not None:
            progress(start + len(batch), len(targets.udids))
    return BulkCommandQueued(
        devices=outcome.queued,
        already_queued=outcome.already_queued,
        not_enrolled=targets.not_enrolled + outcome.not_enrolled,
        not_applicable=sum(outcome.not_applicable.values()),
        reasons=outcome.reasons(),
        bulk_id=chosen_id,
    )
