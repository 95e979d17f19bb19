"""Each enrollment's queue of MDM commands: enqueue one or many, list, cancel.

Reference ``apple-mdm-protocol.md`` section 3. A command is queued for an *enrolled* device, in the caller's
transaction, together with its push (``push/delivery.py`` ``request_pushes``): both commit or neither does, and the
push job sends the push only after the commit, so a device woken always finds its command (the issue's "pushes
sent before the command was committed"). The device fetches it at the ServerURL (``mdm/connect.py``).

Idempotent on the CommandUUID: queuing a UUID that exists for the same device and the same command returns that
command, however often it is asked (a client retrying after a lost answer queues nothing twice).

Bulk: :func:`enqueue_bulk` queues one command (a UUID per device) for one batch of devices and requests one
push per device; the interface commits after each batch (:func:`bulk_batches` cuts a fleet into batches, each device
once), so 100,000 devices are a few hundred short transactions, and a stop between batches loses none of those
committed.
"""

from __future__ import annotations

import plistlib
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pippin.admin.actor import Actor
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.errors import Conflict, InvalidInput, NotFound
from pippin.mdm.command_views import CommandView, command_view
from pippin.push.delivery import request_pushes
from pippin.store.models import Command, CommandStatus, Enrollment, EnrollmentStatus, waiting_clause

__all__ = [
    "BULK_BATCH",
    "BulkReport",
    "CommandRefused",
    "CommandView",
    "QueuedCommand",
    "bulk_batches",
    "cancel_command",
    "cancel_waiting_commands",
    "enqueue_bulk",
    "enqueue_command",
    "list_commands",
]

#: Devices per bulk batch: one transaction each, short enough not to hold the database.
BULK_BATCH = 1000
#: A command's plist, sealed: an InstallProfile carries a whole profile; past this it is refused.
MAX_COMMAND_BYTES = 1024 * 1024
MAX_REQUEST_TYPE_CHARS = 64
MAX_COMMAND_UUID_CHARS = 64
MAX_LIST = 1000
MAX_EXPIRATION = timedelta(days=365)
_PRIORITY_RANGE = range(-1000, 1001)
_IN_CHUNK = 500


class CommandRefused(InvalidInput):
    """The command cannot be queued as given; nothing was queued."""


@dataclass(frozen=True)
class QueuedCommand:
    """What callers build (``mdm/command_catalog.py``) and the queue stores for each device."""

    request_type: str
    #: Apple's ``Command`` dictionary: ``RequestType`` and its arguments, without the CommandUUID.
    command: dict[str, object]
    #: Erase, lock, clear passcode: interfaces confirm and audit them.
    destructive: bool = False


@dataclass
class BulkReport:
    """What one bulk batch did: the commands queued (UDID to CommandUUID), and the devices left out."""

    bulk_id: str
    queued: dict[str, str] = field(default_factory=dict)
    #: UDIDs with no enrollment.
    not_found: list[str] = field(default_factory=list)
    #: Enrollments that are not ``enrolled`` (enrolling, checked out, failed): no command waits for them.
    not_enrolled: list[str] = field(default_factory=list)
    #: Enrolled devices whose push cannot be sent now (no token yet, a token APNs refused): queued, unreachable.
    unreachable: list[str] = field(default_factory=list)
    #: Devices whose command (under the UUID ``command_uuids`` gave) was queued before: by an earlier run.
    already_queued: list[str] = field(default_factory=list)


def sealed_body(queued: QueuedCommand, *, box: SecretBox) -> bytes:
    """The command checked and sealed as the queue stores it; :class:`CommandRefused` when it cannot be sent."""
    kind = queued.request_type
    if not isinstance(kind, str) or not 0 < len(kind) <= MAX_REQUEST_TYPE_CHARS or not kind.isascii():
        raise CommandRefused(f"A RequestType is 1 to {MAX_REQUEST_TYPE_CHARS} ASCII characters.")
    command = queued.command
    if not isinstance(command, dict) or command.get("RequestType") != kind:
        raise CommandRefused("The command must be a dictionary whose RequestType is the request type queued.")
    if any(not isinstance(key, str) for key in command):
        raise CommandRefused("The command's keys must be strings.")
    try:
        body = plistlib.dumps(command, fmt=plistlib.FMT_XML, sort_keys=False)
    except (TypeError, ValueError, OverflowError) as error:
        raise CommandRefused(
            "The command holds a value a property list cannot carry (strings, numbers, booleans, dates, data, "
            "arrays and dictionaries only).",
            hint=f"Check the payload's values ({type(error).__name__}).",
        ) from None
    if len(body) > MAX_COMMAND_BYTES:
        raise CommandRefused(f"The command is larger than {MAX_COMMAND_BYTES // 1024} KiB.")
    return box.encrypt(body)


def _check_uuid(command_uuid: str) -> str:
    if (
        not isinstance(command_uuid, str)
        or not 0 < len(command_uuid) <= MAX_COMMAND_UUID_CHARS
        or not command_uuid.isascii()
        or not command_uuid.isprintable()
    ):
        raise CommandRefused(f"A CommandUUID is 1 to {MAX_COMMAND_UUID_CHARS} printable ASCII characters.")
    return command_uuid


def _check_priority(priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in _PRIORITY_RANGE:
        raise CommandRefused(
            f"A priority is a whole number from {_PRIORITY_RANGE.start} to {_PRIORITY_RANGE.stop - 1}."
        )
    return priority


def _expires_at(settings: Settings, now: datetime, expires_in: timedelta | None) -> datetime:
    wait = settings.command_expiration if expires_in is None else expires_in
    if not timedelta(0) < wait <= MAX_EXPIRATION:
        raise CommandRefused(f"A command waits more than nothing and at most {MAX_EXPIRATION.days} days.")
    return now + wait


def _enrolled(session: Session, udid: str) -> Enrollment:
    enrollment = session.get(Enrollment, udid)
    if enrollment is None:
        raise NotFound("No enrollment has this UDID.", hint="Check the UDID (`pippin devices list` shows it).")
    if enrollment.status is not EnrollmentStatus.enrolled:
        raise Conflict(
            f"The device is {enrollment.status.value}, not enrolled: no command can reach it.",
            hint="Queue commands once the device has enrolled (its TokenUpdate check-in).",
        )
    return enrollment


def _same_command(existing: Command, udid: str, queued: QueuedCommand, box: SecretBox) -> Command:
    """The command already queued under this UUID, if it is this one; a :class:`Conflict` otherwise."""
    if existing.udid != udid or existing.request_type != queued.request_type:
        raise Conflict(
            "This CommandUUID is already used by another command.",
            hint="Give each command its own UUID, or leave it out and Pippin makes one.",
        )
    if plistlib.loads(box.decrypt(existing.body_encrypted)) != queued.command:
        raise Conflict(
            "This CommandUUID is already queued with other arguments.",
            hint="Queue a changed command under a new UUID.",
        )
    return existing


def enqueue_command(
    session: Session,
    *,
    udid: str,
    queued: QueuedCommand,
    box: SecretBox,
    settings: Settings,
    now: datetime,
    actor: Actor | None,
    command_uuid: str | None = None,
    priority: int = 0,
    expires_in: timedelta | None = None,
) -> Command:
    """Queue ``queued`` for the enrolled device ``udid`` and ask for its push, in the caller's transaction.

    The same ``command_uuid`` queued again (a retry) returns the command queued the first time and changes
    nothing; a UUID used by another command is a :class:`Conflict`. ``expires_in`` overrides
    ``PIPPIN_COMMAND_EXPIRATION`` for this command. Commits nothing.
    """
    body = sealed_body(queued, box=box)
    chosen_uuid = _check_uuid(command_uuid) if command_uuid is not None else str(uuid.uuid4()).upper()
    rank = _check_priority(priority)
    expires_at = _expires_at(settings, now, expires_in)
    existing = session.scalar(select(Command).where(Command.command_uuid == chosen_uuid))
    if existing is not None:
        return _same_command(existing, udid, queued, box)
    _enrolled(session, udid)
    command = Command(
        command_uuid=chosen_uuid,
        udid=udid,
        request_type=queued.request_type,
        priority=rank,
        status=CommandStatus.queued,
        created_at=now,
        expires_at=expires_at,
        body_encrypted=body,
        deliveries=0,
        not_now_count=0,
        actor=actor.name[:320] if actor is not None else None,
    )
    try:
        with session.begin_nested():
            session.add(command)
    except IntegrityError:  # the same UUID queued at this moment by another request: that one stands
        existing = session.scalar(select(Command).where(Command.command_uuid == chosen_uuid))
        if existing is None:
            raise
        return _same_command(existing, udid, queued, box)
    request_pushes(session, udids=[udid], settings=settings, now=now)
    return command


def bulk_batches(udids: Iterable[str], size: int = BULK_BATCH) -> Iterator[list[str]]:
    """``udids`` in batches for :func:`enqueue_bulk`, each UDID once (the first time it comes), in the given order."""
    seen: set[str] = set()
    batch: list[str] = []
    for udid in udids:
        if udid in seen:
            continue
        seen.add(udid)
        batch.append(udid)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _statuses(session: Session, udids: Sequence[str]) -> dict[str, EnrollmentStatus]:
    found: dict[str, EnrollmentStatus] = {}
    for start in range(0, len(udids), _IN_CHUNK):
        chunk = udids[start : start + _IN_CHUNK]
        for udid, status in session.execute(
            select(Enrollment.udid, Enrollment.status).where(Enrollment.udid.in_(chunk))
        ):
            found[udid] = status
    return found


def _existing_uuids(session: Session, command_uuids: Sequence[str]) -> set[str]:
    """Which of ``command_uuids`` are queued already (read on the unique index of the UUID, not the history)."""
    found: set[str] = set()
    for start in range(0, len(command_uuids), _IN_CHUNK):
        chunk = command_uuids[start : start + _IN_CHUNK]
        found.update(session.scalars(select(Command.command_uuid).where(Command.command_uuid.in_(chunk))))
    return found


def enqueue_bulk(
    session: Session,
    *,
    udids: Sequence[str],
    queued: QueuedCommand | Mapping[str, QueuedCommand],
    box: SecretBox,
    settings: Settings,
    now: datetime,
    actor: Actor | None,
    priority: int = 0,
    bulk_id: str | None = None,
    expires_in: timedelta | None = None,
    command_uuids: Callable[[str], str] | None = None,
) -> BulkReport:
    """Queue ``queued`` for one batch of devices, one CommandUUID each, and ask for one push per device.

    ``queued`` is one command for every device, or each device's own (by UDID: a bulk request builds the command
    per device's facts); either way the batch is one insert and one push request, which locks the devices' rows in
    key order, so two writers of the same devices' push rows never wait on each other in a cycle.

    One batch, in the caller's transaction: the interface commits after each (see the module docstring) and passes
    the same ``bulk_id`` to every batch of one request. A UDID given twice in the batch gets one command. Devices not
    enrolled are reported, not refused: the rest of the batch is queued. ``command_uuids`` gives each device's UUID
    (fresh ones without it); a device whose UUID exists already is passed over, so a batch run again after a stop
    queues nothing twice.
    """
    if len(udids) > BULK_BATCH:
        raise CommandRefused(f"A bulk batch holds at most {BULK_BATCH} devices; cut the list with bulk_batches().")
    rank = _check_priority(priority)
    expires_at = _expires_at(settings, now, expires_in)
    each = queued if isinstance(queued, Mapping) else dict.fromkeys(udids, queued)
    for distinct in {id(command): command for command in each.values()}.values():
        sealed_body(distinct, box=box)  # refused whole before anything is written
    report = BulkReport(bulk_id=bulk_id or str(uuid.uuid4()))
    wanted = list(dict.fromkeys(udids))
    statuses = _statuses(session, wanted)
    chosen = {udid: _check_uuid(command_uuids(udid)) for udid in wanted} if command_uuids is not None else {}
    existing = _existing_uuids(session, list(chosen.values()))
    rows = []
    for udid in wanted:
        status = statuses.get(udid)
        if status is None:
            report.not_found.append(udid)
            continue
        if chosen.get(udid) in existing:
            report.already_queued.append(udid)
            continue
        if status is not EnrollmentStatus.enrolled:
            report.not_enrolled.append(udid)
            continue
        command = each.get(udid)
        if command is None:
            raise CommandRefused(f"No command is given for the device {udid}.")
        command_uuid = chosen.get(udid) or str(uuid.uuid4()).upper()
        report.queued[udid] = command_uuid
        rows.append(
            {
                "command_uuid": command_uuid,
                "udid": udid,
                "request_type": command.request_type,
                "priority": rank,
                "status": CommandStatus.queued,
                "created_at": now,
                "expires_at": expires_at,
                # Each device's copy sealed on its own (fresh nonce): a ciphertext is never shared between rows.
                "body_encrypted": sealed_body(command, box=box),
                "deliveries": 0,
                "not_now_count": 0,
                "actor": actor.name[:320] if actor is not None else None,
                "bulk_id": report.bulk_id,
            }
        )
    if rows:
        session.execute(insert(Command), rows)
        pushes = request_pushes(session, udids=list(report.queued), settings=settings, now=now)
        report.unreachable = pushes.not_pushable
    return report


def list_commands(
    session: Session, *, udid: str, box: SecretBox, limit: int = 100, before_id: int | None = None
) -> list[CommandView]:
    """The device's commands, newest first, ``limit`` at a time (``before_id``: the page after that command)."""
    if not 0 < limit <= MAX_LIST:
        raise InvalidInput(f"A page holds 1 to {MAX_LIST} commands.")
    query = select(Command).where(Command.udid == udid)
    if before_id is not None:
        query = query.where(Command.id < before_id)
    rows = session.scalars(query.order_by(Command.id.desc()).limit(limit))
    return [command_view(row, box=box) for row in rows]


def cancel_command(session: Session, *, udid: str, command_uuid: str, now: datetime, actor: Actor | None) -> Command:
    """Cancel a command the device has not fetched (``queued``) or declined for now (``not_now``).

    A command already sent may be running on the device: it cannot be taken back, so it is a :class:`Conflict`.
    """
    command = session.scalar(
        select(Command).where(Command.command_uuid == command_uuid, Command.udid == udid).with_for_update()
    )
    if command is None:
        raise NotFound("This device has no command with this UUID.", hint="`pippin devices commands` lists them.")
    if command.status not in (CommandStatus.queued, CommandStatus.not_now):
        raise Conflict(
            f"The command is {command.status.value}: only a queued command, or one the device answered NotNow, "
            "can be canceled.",
        )
    command.status = CommandStatus.canceled
    command.finished_at = now
    session.flush()
    return command


def cancel_waiting_commands(session: Session, *, udid: str, now: datetime) -> int:
    """Cancel every command still waiting for ``udid`` (a re-enrollment: the device starts over); how many."""
    result = session.execute(
        update(Command)
        .where(Command.udid == udid, waiting_clause())
        .values(status=CommandStatus.canceled, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
