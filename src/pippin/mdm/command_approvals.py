"""A bulk erase needs two admins: one asks, another approves, and only then are the commands queued.

Erasing many devices at once is what an attacker with one admin's credentials, or one admin's typo in a filter,
would do the most harm with, so it is never queued on one admin's word (issue 13). :func:`request_approval`
stores the request, its devices fixed at that moment (the approver approves those, not whatever a filter matches
later) and its payload sealed; it expires after :data:`APPROVAL_LIFETIME`. :func:`approve` lets any other admin
approve it; :func:`queue_approved` then queues it one batch per transaction, advancing ``queued_through`` in each
batch's own transaction, under a row lock, so two approvers at once, or a run that stopped half-way and is started
again, queue every device's command exactly once.

The requester and the approver are compared by name: a person with an API token and an operating-system account
of different names is two admins to Pippin, which can tell no more.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from pippin.admin.audit import Actor, AuditAction, record_event
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.errors import Conflict, InvalidInput, NotFound
from pippin.mdm import command_queue as queue_service
from pippin.mdm.command_batches import queue_batch
from pippin.mdm.command_schemas import CommandApprovalRead
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import (
    MAX_STORED_INTEGER,
    ApprovalStatus,
    CommandApproval,
    CommandApprovalTarget,
)

__all__ = ["APPROVAL_LIFETIME", "InvalidInput", "approve", "needs_approval", "queue_approved", "request_approval"]

#: How long a request waits for its approval.
APPROVAL_LIFETIME = timedelta(hours=24)
#: The commands that need a second admin when sent to more than one device at once.
NEEDS_APPROVAL = frozenset({"EraseDevice"})
BATCH = queue_service.BULK_BATCH
MAX_LIST = 1000
Progress = Callable[[int, int], None]


class ApprovalRefused(Conflict):
    """The request cannot be approved: it is the approver's own, it expired, or it was approved already."""

    code = "approval_refused"


def needs_approval(request_type: str) -> bool:
    return request_type in NEEDS_APPROVAL


def _status(approval: CommandApproval, now: datetime) -> ApprovalStatus:
    if approval.status is ApprovalStatus.pending and now >= approval.expires_at:
        return ApprovalStatus.expired
    return approval.status


def _read(approval: CommandApproval, now: datetime) -> CommandApprovalRead:
    return CommandApprovalRead(
        id=approval.id,
        request_type=approval.request_type,
        selection=approval.selection,
        devices=approval.devices,
        status=_status(approval, now),
        requested_by=approval.requested_by,
        requested_via=approval.requested_via,
        requested_at=approval.requested_at,
        expires_at=approval.expires_at,
        approved_by=approval.approved_by,
        approved_at=approval.approved_at,
        queued=approval.queued,
        finished_at=approval.finished_at,
    )


def request_approval(
    session: Session,
    *,
    request_type: str,
    payload: Mapping[str, object],
    udids: Sequence[str],
    selection: str,
    box: SecretBox,
    now: datetime,
    actor: Actor,
    lifetime: timedelta = APPROVAL_LIFETIME,
) -> CommandApprovalRead:
    """Store a bulk erase for another admin to approve; nothing is queued yet."""
    if not udids:
        raise InvalidInput("No enrolled device matches: there is nothing to erase.", hint="Check the filter.")
    sealed = box.encrypt(json.dumps(dict(payload), sort_keys=True).encode())
    approval = CommandApproval(
        request_type=request_type,
        payload_encrypted=sealed,
        selection=selection[:500],
        devices=len(udids),
        status=ApprovalStatus.pending,
        requested_by=actor.name[:320],
        requested_via=actor.interface.value,
        requested_at=now,
        expires_at=now + lifetime,
        bulk_id=str(uuid.uuid4()),
        queued=0,
    )
    session.add(approval)
    session.flush()
    for start in range(0, len(udids), BATCH):
        rows = [{"approval_id": approval.id, "udid": udid} for udid in udids[start : start + BATCH]]
        session.execute(insert(CommandApprovalTarget), rows)
    detail = {"request_type": request_type, "devices": len(udids), "approval": approval.id, "selection": selection}
    record_event(
        session, actor=actor, action=AuditAction.command_send_bulk, target=f"approval {approval.id}", detail=detail,
        now=now,
    )  # fmt: skip
    return _read(approval, now)


def _get(session: Session, approval_id: int, *, lock: bool = False) -> CommandApproval:
    if not 1 <= approval_id <= MAX_STORED_INTEGER:
        raise InvalidInput(f"An approval request id is a number from 1 to {MAX_STORED_INTEGER}.")
    query = select(CommandApproval).where(CommandApproval.id == approval_id)
    approval = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if approval is None:
        raise NotFound(f"There is no approval request {approval_id}.", hint="`pippin commands approvals` lists them.")
    return approval


def get_approval(session: Session, *, approval_id: int, now: datetime) -> CommandApprovalRead:
    return _read(_get(session, approval_id), now)


def list_approvals(session: Session, *, now: datetime, limit: int = 100) -> list[CommandApprovalRead]:
    """The newest requests first, whatever their status."""
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIST}.", hint="Ask for fewer.")
    rows = session.scalars(select(CommandApproval).order_by(CommandApproval.id.desc()).limit(limit))
    return [_read(approval, now) for approval in rows]


def approve(session: Session, *, approval_id: int, now: datetime, actor: Actor) -> CommandApprovalRead:
    """Approve another admin's pending request (audited); :func:`queue_approved` queues it afterwards.

    An approved request whose queuing has not finished is let through again (to resume it) by anyone but its
    requester, without a second approval event.
    """
    approval = _get(session, approval_id, lock=True)
    if actor.name.casefold() == approval.requested_by.casefold():
        raise ApprovalRefused(
            f"Approval request {approval_id} is your own: another admin must approve a bulk erase.",
            hint="Ask another admin to run `pippin commands approve ID` (or the API's approve route).",
        )
    status = _status(approval, now)
    if status is ApprovalStatus.expired:
        raise ApprovalRefused(
            f"Approval request {approval_id} expired at {approval.expires_at:%Y-%m-%d %H:%M} UTC; nothing was queued.",
            hint="Ask for the erase again.",
        )
    if status is ApprovalStatus.queued:
        raise ApprovalRefused(f"Approval request {approval_id} was approved and queued already.")
    if status is ApprovalStatus.pending:
        approval.status = ApprovalStatus.approved
        approval.approved_by = actor.name[:320]
        approval.approved_via = actor.interface.value
        approval.approved_at = now
        detail = {
            "request_type": approval.request_type,
            "devices": approval.devices,
            "requested_by": approval.requested_by,
        }
        record_event(
            session, actor=actor, action=AuditAction.command_approve, target=f"approval {approval_id}",
            detail=detail, now=now,
        )  # fmt: skip
    session.flush()
    return _read(approval, now)


def _payload(approval: CommandApproval, box: SecretBox) -> dict[str, Any]:
    payload = json.loads(box.decrypt(approval.payload_encrypted))
    assert isinstance(payload, dict)
    return payload


def queue_approved(
    session_factory: SessionFactory,
    *,
    approval_id: int,
    box: SecretBox,
    settings: Settings,
    clock: Callable[[], datetime],
    actor: Actor,
    batch_size: int = BATCH,
    progress: Progress | None = None,
) -> CommandApprovalRead:
    """Queue an approved request's commands, one transaction per batch, from where any earlier run stopped.

    Devices that are no longer enrolled are passed over (they would never fetch the command). Commits itself.
    """
    while True:
        with transaction(session_factory) as session:
            approval = _get(session, approval_id, lock=True)
            now = clock()
            if approval.status is not ApprovalStatus.approved:
                return _read(approval, now)
            query = select(CommandApprovalTarget.udid).where(CommandApprovalTarget.approval_id == approval_id)
            if approval.queued_through is not None:
                query = query.where(CommandApprovalTarget.udid > approval.queued_through)
            size = min(batch_size, BATCH)
            batch = list(session.scalars(query.order_by(CommandApprovalTarget.udid).limit(size)))
            if not batch:
                approval.status = ApprovalStatus.queued
                approval.finished_at = now
                return _read(approval, now)
            # Devices that left enrollment, or that the erase no longer applies to, are passed over.
            done_here = queue_batch(
                session,
                udids=batch,
                request_type=approval.request_type,
                payload=_payload(approval, box),
                box=box,
                settings=settings,
                now=now,
                actor=actor,
                bulk_id=approval.bulk_id,
            )
            approval.queued += done_here.queued
            approval.queued_through = batch[-1]
            done, total = approval.queued, approval.devices
        if progress is not None:
            progress(done, total)
