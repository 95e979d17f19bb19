"""One batch of a bulk command, as both bulk paths queue it (a plain bulk send and an approved bulk erase).

Each device's command is checked against what that device reported, as a command for one device is: a
supervised-only command is not queued for the unsupervised devices of a filter, nor one their iOS version lacks;
they are counted, with the reasons, and the rest of the batch is queued. Each device's CommandUUID is derived from
the bulk request and the device (:func:`bulk_command_uuid`), so a batch run again, after a stop half-way or by a
client retrying with the same bulk id, passes over the devices that have their command already.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.admin.actor import Actor
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.errors import InvalidInput
from pippin.mdm import command_queue as queue_service
from pippin.mdm.command_catalog import CommandRejected, DeviceFacts, build_command
from pippin.mdm.command_queue import QueuedCommand
from pippin.mdm.command_targets import device_facts
from pippin.store.models import Enrollment

#: The namespace of the CommandUUIDs of bulk requests (a fixed, random UUID: the derived UUIDs are Pippin's own).
_BULK_NAMESPACE = uuid.UUID("6f1d3c0e-5a4b-4e7f-9c2d-8b1a0e3f5d71")
#: How many distinct reasons a bulk answer names.
MAX_REASONS = 5


def bulk_command_uuid(bulk_id: str, udid: str) -> str:
    """The CommandUUID of the command a bulk request ``bulk_id`` queues for ``udid``: the same on every run."""
    return str(uuid.uuid5(_BULK_NAMESPACE, f"{bulk_id}/{udid}")).upper()


def check_bulk_id(bulk_id: str) -> str:
    """``bulk_id`` as the canonical text of a UUID, or :class:`InvalidInput`."""
    try:
        return str(uuid.UUID(bulk_id))
    except (ValueError, AttributeError, TypeError):
        raise InvalidInput(
            "A bulk id is a UUID such as 3f2b8e6a-4c1d-4e5f-9a7b-0c1d2e3f4a5b.",
            hint="Give the bulk id a bulk send printed (or choose a new UUID to retry a request safely).",
        ) from None


@dataclass
class BatchOutcome:
    """What one batch did."""

    queued: int = 0
    #: Devices whose command an earlier run of the same request queued.
    already_queued: int = 0
    #: Devices that left enrollment since they were chosen.
    not_enrolled: int = 0
    #: Devices the command does not apply to, by reason (from the catalog's check of each device's facts).
    not_applicable: Counter[str] = field(default_factory=Counter)

    def add(self, other: BatchOutcome) -> None:
        self.queued += other.queued
        self.already_queued += other.already_queued
        self.not_enrolled += other.not_enrolled
        self.not_applicable.update(other.not_applicable)

    def reasons(self) -> list[str]:
        """The most common reasons devices were left out, most common first."""
        return [reason for reason, _ in self.not_applicable.most_common(MAX_REASONS)]


def _facts(session: Session, udids: Sequence[str]) -> dict[str, DeviceFacts]:
    return {
        enrollment.udid: device_facts(enrollment)
        for enrollment in session.scalars(select(Enrollment).where(Enrollment.udid.in_(udids)))
    }


class BulkCommands:
    """The command built once per distinct set of device facts (a fleet has few), or the reason it cannot be."""

    def __init__(self, request_type: str, payload: Mapping[str, object]) -> None:
        self._request_type = request_type
        self._payload = payload
        self._built: dict[DeviceFacts | None, QueuedCommand | str] = {}

    def for_device(self, facts: DeviceFacts | None) -> QueuedCommand | str:
        if facts not in self._built:
            try:
                self._built[facts] = build_command(self._request_type, self._payload, device=facts)
            except CommandRejected as refused:
                self._built[facts] = refused.message
        return self._built[facts]


def queue_batch(
    session: Session,
    *,
    udids: Sequence[str],
    request_type: str,
    payload: Mapping[str, object],
    box: SecretBox,
    settings: Settings,
    now: datetime,
    actor: Actor,
    bulk_id: str,
    commands: BulkCommands | None = None,
    expires_in: timedelta | None = None,
) -> BatchOutcome:
    """Queue the command for each of ``udids`` (at most one bulk batch) that it applies to, in the caller's
    transaction, under the UUIDs :func:`bulk_command_uuid` derives; what the batch did."""
    commands = commands or batch_commands(request_type, payload)
    facts = _facts(session, udids)
    outcome = BatchOutcome()
    each: dict[str, QueuedCommand] = {}
    for udid in udids:
        built = commands.for_device(facts.get(udid))
        if isinstance(built, str):
            outcome.not_applicable[built] += 1
        else:
            each[udid] = built
    if not each:
        return outcome
    # One call for the whole batch, whatever the commands built: its pushes are requested in one go, in key order.
    report = queue_service.enqueue_bulk(
        session,
        udids=list(each),
        queued=each,
        box=box,
        settings=settings,
        now=now,
        actor=actor,
        bulk_id=bulk_id,
        command_uuids=lambda udid: bulk_command_uuid(bulk_id, udid),
        expires_in=expires_in,
    )
    outcome.queued += len(report.queued)
    outcome.already_queued += len(report.already_queued)
    outcome.not_enrolled += len(report.not_enrolled) + len(report.not_found)
    return outcome


def batch_commands(request_type: str, payload: Mapping[str, object]) -> BulkCommands:
    """What :func:`queue_batch` builds the commands of one bulk request with: pass it to every batch."""
    return BulkCommands(request_type, payload)
