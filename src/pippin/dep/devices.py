"""Writing one page of Apple's device records into the inventory, with a constant number of statements.

A page (at most 1000 records, reference section 3.2/3.3) costs one SELECT of its serials, one bulk INSERT of
the new ones, one bulk UPDATE of the changed ones and, in a refreshing fetch, one UPDATE that stamps the
unchanged ones with the fetch generation. Nothing here grows with the size of the fleet, only with the page.

Apple's rules applied here (reference sections 6 and 8): sync events for one serial are resolved by the
latest ``op_date`` (within the page and against the stored ``last_op_date``); ``deleted`` marks a device
``removed`` at Apple; ``modified`` for a serial Pippin does not know is an ``added`` (a device moved between MDM
servers arrives that way); ``added`` or ``modified`` for a removed device makes it ``assigned`` at Apple again.

Only Apple's side of a device is written here (``apple_status`` and Apple's fields): whether it enrolled is the
enrollment's business (``store/models/enrollment.py``), which the sync never reads or writes.

Pippin's view of each device's profile is made to match Apple's on every record written: a device Pippin holds
as ``assigned`` whose record shows no profile (``empty``, ``removed``, absent) or another profile UUID than the
definition Pippin gave loses that assignment, so the token's default profile step queues it again
(``dep/assignment.py``). A device released and re-assigned at Apple, or moved to another MDM server, comes back
that way, and would otherwise never enroll.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import CursorResult, String, and_, bindparam, insert, select, update
from sqlalchemy.orm import Session

from pippin.store.models import AppleStatus, AssignmentStatus, Device, ProfileDefinition
from pippin.store.models.device import ENROLLABLE_PROFILE_STATUSES


class AppleDevice(Protocol):
    """What the sync reads from one device record (``pippin.dep.wire.DEPDevice`` has these and more)."""

    @property
    def serial_number(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def color(self) -> str | None: ...
    @property
    def asset_tag(self) -> str | None: ...
    @property
    def os(self) -> str | None: ...
    @property
    def device_family(self) -> str | None: ...
    @property
    def profile_status(self) -> str | None: ...
    @property
    def profile_uuid(self) -> str | None: ...
    @property
    def profile_assign_time(self) -> datetime | None: ...
    @property
    def profile_push_time(self) -> datetime | None: ...
    @property
    def device_assigned_date(self) -> datetime | None: ...
    @property
    def device_assigned_by(self) -> str | None: ...
    @property
    def op_type(self) -> str | None: ...
    @property
    def op_date(self) -> datetime | None: ...
    @property
    def record(self) -> dict[str, Any]: ...


class PageMode(StrEnum):
    """How a page is applied."""

    #: A full fetch that refreshes every serial it returns and stamps it with the fetch generation.
    refresh = "refresh"
    #: A full fetch asked for within the full-sync interval: only serials not already present are added.
    add_only = "add_only"
    #: A page of ``/devices/sync`` change events.
    changes = "changes"


@dataclass(frozen=True)
class PageCounts:
    """What applying pages changed; ``skipped`` counts records refused as malformed (logged by the caller)."""

    added: int = 0
    modified: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0

    def __add__(self, other: PageCounts) -> PageCounts:
        return PageCounts(
            added=self.added + other.added,
            modified=self.modified + other.modified,
            removed=self.removed + other.removed,
            unchanged=self.unchanged + other.unchanged,
            skipped=self.skipped + other.skipped,
        )


# The columns a record sets, in the order they are compared; the inventory's copy of Apple's fields.
_APPLE_COLUMNS = (
    "model",
    "description",
    "color",
    "asset_tag",
    "os",
    "device_family",
    "profile_status",
    "profile_uuid",
    "profile_assign_time",
    "profile_push_time",
    "device_assigned_date",
    "device_assigned_by",
)
_SERIAL_MAX = 64
_REMOVED = AppleStatus.removed.value
_ASSIGNED = AppleStatus.assigned.value
# Pippin's assignment of a device: read to compare with Apple's record, never written back by the page's update
# rows (the assignment runner writes them meanwhile), only cleared by a guarded UPDATE when Apple dropped the
# profile (see _clear_dropped_assignments).
_ASSIGNMENT_COLUMNS = (
    "assigned_profile_id",
    "assigned_revision",
    "assignment_status",
    "assignment_retry_at",
    "assignment_error",
    "assignment_updated_at",
)


def _column_length(name: str) -> int | None:
    column_type = Device.__table__.c[name].type
    return column_type.length if isinstance(column_type, String) else None


_LENGTHS = {name: _column_length(name) for name in (*_APPLE_COLUMNS, "last_op_type")}


def _clip(name: str, value: Any) -> Any:
    """Cut an over-long text from Apple to its column, so one odd record cannot fail a whole page."""
    length = _LENGTHS.get(name)
    if length is not None and isinstance(value, str) and len(value) > length:
        return value[:length]
    return value


def _apple_values(device: AppleDevice) -> dict[str, Any]:
    values = {name: _clip(name, getattr(device, name)) for name in _APPLE_COLUMNS}
    values["apple_record"] = dict(device.record)
    return values


def _is_valid_serial(serial: str) -> bool:
    return 0 < len(serial) <= _SERIAL_MAX and serial.strip() == serial


def latest_per_serial(devices: Sequence[AppleDevice]) -> tuple[list[AppleDevice], int]:
    """One record per serial, the one with the latest ``op_date`` (a tie goes to the later one in the page).

    Returns the records in first-seen order and how many malformed records (bad serial) were dropped.
    """
    latest: dict[str, AppleDevice] = {}
    skipped = 0
    for device in devices:
        if not _is_valid_serial(device.serial_number):
            skipped += 1
            continue
        held = latest.get(device.serial_number)
        if held is None or held.op_date is None or device.op_date is None or device.op_date >= held.op_date:
            latest[device.serial_number] = device
    return list(latest.values()), skipped


def apply_device_page(
    session: Session,
    *,
    token_id: int,
    devices: Sequence[AppleDevice],
    mode: PageMode,
    generation: int,
    now: datetime,
) -> PageCounts:
    """Apply one page of Apple's records for ``token_id`` in the caller's transaction; returns the counts.

    ``generation`` is the token's fetch generation, stamped on every device a refreshing fetch returns so that
    :func:`mark_missing_removed` can find the ones it did not return.
    """
    records, skipped = latest_per_serial(devices)
    if not records:
        return PageCounts(skipped=skipped)
    # The definition Pippin gave each device under this token, to compare with the UUID Apple reports.
    given = ProfileDefinition.__table__.alias("given")
    existing = {
        row.serial_number: row
        for row in session.execute(
            select(
                Device.id,
                Device.serial_number,
                Device.token_id,
                Device.apple_status,
                Device.last_op_type,
                Device.last_op_date,
                Device.fetch_generation,
                Device.apple_record,
                *(getattr(Device, name) for name in (*_APPLE_COLUMNS, *_ASSIGNMENT_COLUMNS)),
                given.c.profile_uuid.label("given_uuid"),
            )
            .outerjoin(
                given,
                and_(
                    given.c.profile_id == Device.assigned_profile_id,
                    given.c.revision == Device.assigned_revision,
                    given.c.token_id == token_id,
                ),
            )
            .where(Device.serial_number.in_([record.serial_number for record in records]))
        )
    }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    unchanged_ids: list[int] = []
    added = modified = removed = unchanged = 0
    for record in records:
        row = existing.get(record.serial_number)
        stamped = generation if mode is PageMode.refresh else None
        if row is None:
            if mode is PageMode.changes and record.op_type == "deleted":
                continue  # a device Pippin never saw left again: nothing to record
            inserts.append(_new_row(record, token_id=token_id, generation=stamped or 0, now=now))
            added += 1
            continue
        if mode is PageMode.changes and (
            record.op_date is not None and row.last_op_date is not None and record.op_date < row.last_op_date
        ):
            unchanged += 1  # an older event than the one already applied (reference section 6, de-dup)
            continue
        ours = row.token_id == token_id
        if mode is PageMode.changes and record.op_type == "deleted":
            if not ours or row.apple_status == _REMOVED:
                unchanged += 1
                continue
            # Deleted events are sparse (serial, op_type, op_date): keep the last full record Apple sent.
            updates.append(
                _update_row(
                    row,
                    apple=_current_apple_values(row),
                    token_id=token_id,
                    apple_status=_REMOVED,
                    removed_at=now,
                    op=record,
                    generation=None,
                    now=now,
                )
            )
            removed += 1
            continue
        coming_back = row.apple_status == _REMOVED or not ours
        if mode is PageMode.add_only and not coming_back:
            unchanged += 1
            continue
        apple = _apple_values(record)
        assignment = _assignment_matching_apple(row, record, now=now)
        if (
            not coming_back
            and apple == _current_apple_values(row)
            and assignment == _current_assignment(row)
            and not _op_changes(row, record)
        ):
            unchanged += 1
            if stamped is not None:
                unchanged_ids.append(row.id)
            continue
        if assignment != _current_assignment(row):
            dropped.append(_dropped_assignment(row, assignment))
        updates.append(
            _update_row(
                row,
                apple=apple,
                token_id=token_id,
                apple_status=_ASSIGNED,
                removed_at=None,
                op=record,
                generation=stamped,
                now=now,
            )
        )
        if coming_back:
            added += 1
        else:
            modified += 1
    if inserts:
        session.execute(insert(Device), inserts)
    if updates:
        session.execute(update(Device), updates)
    if dropped:
        _clear_dropped_assignments(session, dropped)
    if unchanged_ids:
        session.execute(
            update(Device)
            .where(Device.id.in_(unchanged_ids))
            .values(fetch_generation=generation, last_synced_at=now)
            .execution_options(synchronize_session=False)
        )
    return PageCounts(added=added, modified=modified, removed=removed, unchanged=unchanged, skipped=skipped)


def mark_missing_removed(session: Session, *, token_id: int, generation: int, now: datetime) -> int:
    """After a complete refreshing fetch: every device of the token that it did not return is ``removed`` at Apple.

    A fetch is a snapshot and reports no deletions (reference section 6); one UPDATE, however big the fleet.
    """
    result = session.execute(
        update(Device)
        .where(
            Device.token_id == token_id,
            Device.fetch_generation != generation,
            Device.apple_status != _REMOVED,
        )
        .values(apple_status=_REMOVED, removed_at=now, last_synced_at=now)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def _current_apple_values(row: Any) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in _APPLE_COLUMNS}
    values["apple_record"] = row.apple_record
    return values


def _current_assignment(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in _ASSIGNMENT_COLUMNS}


def _assignment_matching_apple(row: Any, record: AppleDevice, *, now: datetime) -> dict[str, Any]:
    """The device's assignment once Apple's record is applied: unchanged, or cleared if Apple dropped the profile.

    Only an ``assigned`` assignment is compared: a queued or cooling one is still on its way to Apple.
    """
    current = _current_assignment(row)
    if row.assignment_status != AssignmentStatus.assigned:
        return current
    if record.profile_status in ENROLLABLE_PROFILE_STATUSES and record.profile_uuid == row.given_uuid:
        return current
    shown = record.profile_status or "empty"
    return {
        "assigned_profile_id": None,
        "assigned_revision": None,
        "assignment_status": None,
        "assignment_retry_at": None,
        "assignment_error": f"Apple no longer holds Pippin's profile for this device (profile status {shown}).",
        "assignment_updated_at": now,
    }


def _dropped_assignment(row: Any, cleared: dict[str, Any]) -> dict[str, Any]:
    """The guarded clear of one device's assignment: the assignment as read, and the cleared values."""
    return {
        "b_id": row.id,
        "b_profile_id": row.assigned_profile_id,
        "b_revision": row.assigned_revision,
        "b_error": cleared["assignment_error"],
        "b_now": cleared["assignment_updated_at"],
    }


def _clear_dropped_assignments(session: Session, dropped: list[dict[str, Any]]) -> None:
    """Clear the assignments Apple dropped, only where they are still the ``assigned`` ones the page was read with.

    The assignment runner writes these columns while a sync runs, from another transaction; on PostgreSQL the
    page's rows are read before they are written, so writing back what was read would undo a batch's claim or its
    stored answer (and the device would be sent again). The guard makes a change made meanwhile win.
    """
    session.connection().execute(
        update(Device)
        .where(
            Device.id == bindparam("b_id"),
            Device.assignment_status == AssignmentStatus.assigned,
            Device.assigned_profile_id == bindparam("b_profile_id"),
            Device.assigned_revision == bindparam("b_revision"),
        )
        .values(
            assigned_profile_id=None,
            assigned_revision=None,
            assignment_status=None,
            assignment_retry_at=None,
            assignment_error=bindparam("b_error"),
            assignment_updated_at=bindparam("b_now"),
        ),
        dropped,
    )


def _op_changes(row: Any, record: AppleDevice) -> bool:
    return record.op_date is not None and record.op_date != row.last_op_date


def _new_row(record: AppleDevice, *, token_id: int, generation: int, now: datetime) -> dict[str, Any]:
    return {
        "serial_number": record.serial_number,
        "token_id": token_id,
        **_apple_values(record),
        "last_op_type": _clip("last_op_type", record.op_type),
        "last_op_date": record.op_date,
        "apple_status": _ASSIGNED,
        "first_seen_at": now,
        "last_synced_at": now,
        "removed_at": None,
        "fetch_generation": generation,
    }


def _update_row(
    row: Any,
    *,
    apple: dict[str, Any],
    token_id: int,
    apple_status: str,
    removed_at: datetime | None,
    op: AppleDevice,
    generation: int | None,
    now: datetime,
) -> dict[str, Any]:
    # Every update row carries the same keys, so the whole page goes out as one executemany.
    return {
        "id": row.id,
        "token_id": token_id,
        **apple,
        # Fetch records carry no op_type/op_date: the last change Apple reported stays on record.
        "last_op_type": _clip("last_op_type", op.op_type) if op.op_date is not None else row.last_op_type,
        "last_op_date": op.op_date if op.op_date is not None else row.last_op_date,
        "apple_status": apple_status,
        "removed_at": removed_at,
        "last_synced_at": now,
        "fetch_generation": generation if generation is not None else row.fetch_generation,
    }
