"""The inventory, "All corporate-owned devices": one query engine for the CLI, the API and the console.

Filters (state, token, profile, assignment status, search, cannot enroll, unreachable), sorts in both directions,
and keyset paging: every order is completed by the serial number (unique), and a page continues after the (sort value,
serial) of the previous page's last row, so page 1000 costs what page 1 does and devices added meanwhile never
shift a page (no OFFSET). Null sort values sort as the empty string, so the continuation is one row-value
comparison on both databases. The "last synced" order walks ``ix_devices_synced_serial``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, String, func, literal, or_, select, tuple_, union_all
from sqlalchemy.orm import Session

from pippin.errors import InvalidInput, NotFound
from pippin.inventory import manual_enrollments
from pippin.inventory.cursor import Position, decode_cursor, encode_cursor
from pippin.inventory.reachability import refused_token_condition, unreachable_columns
from pippin.inventory.schemas import (
    ENROLLMENT_FIELDS,
    AssignmentFilter,
    DeviceFilters,
    DeviceRead,
    DeviceSort,
    InventoryPage,
    SortDirection,
)
from pippin.inventory.setup_problems import with_setup_problems
from pippin.inventory.state import (
    DeviceState,
    cannot_enroll,
    cannot_enroll_expression,
    state_expression,
)
from pippin.mdm.setup_schemas import SetupWatch
from pippin.store.matching import contains_ignoring_case
from pippin.store.models import (
    AssignmentStatus,
    DEPProfile,
    DEPToken,
    Device,
    DeviceStateCount,
    DirectoryUser,
    Enrollment,
    ProfileStatus,
    PushDelivery,
)
from pippin.store.models.device import apple_holds_a_profile
from pippin.text import check_text

_Query = Select[*tuple[Any, ...]]

MAX_PAGE = 500
MAX_SEARCH = 128
_SERIAL_MAX = 64
_PROFILE_STATUSES = {status.value for status in ProfileStatus}


def _sort_key(sort: DeviceSort) -> ColumnElement[Any]:
    if sort is DeviceSort.serial:
        return Device.serial_number.expression
    if sort is DeviceSort.last_synced:
        return Device.last_synced_at.expression  # never null, and indexed with the serial
    if sort is DeviceSort.state:
        return state_expression()
    column: Any = {
        DeviceSort.model: Device.model,
        DeviceSort.asset_tag: Device.asset_tag,
    }[sort]
    return func.coalesce(column, "")


def _device_query() -> _Query:
    """A device's row as the inventory shows it: its own columns, not its whole Apple record (a JSON document
    parsed per row) nor an ORM object, so that a page costs what its rows hold."""
    return (
        select(
            Device.id,
            *(getattr(Device, name).label(name) for name in _DEVICE_FIELDS),
            Device.profile_status.label("apple_profile_status"),
            DEPToken.name.label("token"),
            DEPProfile.name.label("profile"),
            Enrollment.status.label("enrollment_status"),
            *(getattr(Enrollment, name).label(name) for name in ENROLLMENT_FIELDS),
            DirectoryUser.username.label("primary_user"),
            state_expression().label("enrollment_state"),
            *unreachable_columns(),
        )
        .select_from(Device)
        .outerjoin(DEPToken, DEPToken.id == Device.token_id)
        .outerjoin(DEPProfile, DEPProfile.id == Device.assigned_profile_id)
        .outerjoin(Enrollment, Enrollment.device_id == Device.id)
        .outerjoin(DirectoryUser, DirectoryUser.id == Enrollment.primary_user_id)
        .outerjoin(PushDelivery, PushDelivery.udid == Enrollment.udid)
    )


def _needs_enrollment(filters: DeviceFilters, sort: DeviceSort) -> bool:
    return filters.state is not None or filters.cannot_enroll or filters.unreachable or sort is DeviceSort.state


def _filtered(query: _Query, filters: DeviceFilters) -> _Query:
    if filters.state is not None:
        query = query.where(state_expression() == filters.state.value)
    # By id through a subquery rather than a join: the device indexes on token_id and assigned_profile_id apply.
    if filters.token:
        check_text(filters.token, field="The token filter")
        token_id = select(DEPToken.id).where(DEPToken.name == filters.token).scalar_subquery()
        query = query.where(Device.token_id == token_id)
    if filters.profile:
        check_text(filters.profile, field="The profile filter")
        profile_id = select(DEPProfile.id).where(DEPProfile.name == filters.profile).scalar_subquery()
        query = query.where(Device.assigned_profile_id == profile_id)
    if filters.assignment is AssignmentFilter.none:
        query = query.where(Device.assignment_status.is_(None))
    elif filters.assignment is not None:
        query = query.where(Device.assignment_status == filters.assignment.value)
    if filters.search:
        check_text(filters.search, field="The search text")
        if len(filters.search) > MAX_SEARCH:
            raise InvalidInput(f"The search text is longer than {MAX_SEARCH} characters.", hint="Search for less.")
        columns = (Device.serial_number, Device.model, Device.asset_tag, Device.description)
        query = query.where(or_(*(contains_ignoring_case(column, filters.search) for column in columns)))
    if filters.cannot_enroll:
        query = query.where(cannot_enroll_expression())
    return query


def _read(row: Any) -> DeviceRead:
    values = row._mapping
    apple_status, profile_status = values["apple_status"], values["apple_profile_status"]
    return DeviceRead(
        **{name: values[name] for name in _DEVICE_FIELDS},
        profile_status=profile_status if profile_status in _PROFILE_STATUSES else None,
        enrollment_state=DeviceState(values["enrollment_state"]),
        token=values["token"],
        profile=values["profile"],
        can_enroll=apple_holds_a_profile(apple_status=apple_status, profile_status=profile_status),
        cannot_enroll=cannot_enroll(
            apple_status=apple_status, profile_status=profile_status, enrollment_status=values["enrollment_status"]
        ),
        enrollment_status=values["enrollment_status"],
        **{name: values[name] for name in ENROLLMENT_FIELDS},
        primary_user=values["primary_user"],
        unreachable=bool(values["unreachable"]),
        unreachable_reason=values["unreachable_reason"],
        unreachable_since=values["unreachable_since"],
    )


_COMPUTED = {
    "profile_status", "enrollment_state", "token", "profile", "can_enroll", "cannot_enroll", "enrollment_status",
    "has_dep_record", "primary_user", "unreachable", "unreachable_reason", "unreachable_since", "setup_problem",
    *ENROLLMENT_FIELDS,
}  # fmt: skip
_DEVICE_FIELDS = tuple(name for name in DeviceRead.model_fields if name not in _COMPUTED)


def list_devices(
    session: Session,
    *,
    filters: DeviceFilters | None = None,
    sort: DeviceSort = DeviceSort.serial,
    direction: SortDirection = SortDirection.asc,
    limit: int = 100,
    cursor: str | None = None,
    setup_watch: SetupWatch | None = None,
) -> InventoryPage:
    """A page of devices matching ``filters`` in the chosen order; ``next_cursor`` continues it (null at the end).

    ``search`` matches anywhere in the serial, model, asset tag or description, ignoring case; ``cannot_enroll``
    keeps the devices assigned at Apple and not enrolled for which Apple holds no profile; ``unreachable`` the
    devices whose current push token APNs refused. With ``setup_watch``, each device's setup problem is filled in
    (two more queries for the page, none per device).
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}.", hint="Page through with next_cursor.")
    filters = filters or DeviceFilters()
    key = _sort_key(sort)
    # Two steps: the page's ids in order, reading only what filters and sorts need, then those rows whole. A sort
    # that cannot walk an index then carries a few columns per device through the sorter, not every device's
    # Apple record.
    query = select(
        Device.id.label("device_id"),
        literal(None, type_=String).label("udid"),
        Device.serial_number.label("serial"),
        key.label("sort_value"),
    ).select_from(Device)
    if _needs_enrollment(filters, sort):
        query = query.outerjoin(Enrollment, Enrollment.device_id == Device.id)
    if filters.unreachable:
        query = query.join(PushDelivery, refused_token_condition())
    query = _filtered(query, filters)
    descending = direction is SortDirection.desc
    position = decode_cursor(cursor, sort=sort, direction=direction) if cursor is not None else None
    if position is not None:
        if sort is DeviceSort.serial:
            after = Device.serial_number < position.serial if descending else Device.serial_number > position.serial
        else:
            ours, theirs = tuple_(key, Device.serial_number), tuple_(position.value, position.serial)
            after = ours < theirs if descending else ours > theirs
        query = query.where(after)
    if sort is DeviceSort.serial:
        order = [Device.serial_number.desc() if descending else Device.serial_number.asc()]
    else:
        order = [key.desc(), Device.serial_number.desc()] if descending else [key.asc(), Device.serial_number.asc()]
    query = query.order_by(*order).limit(limit + 1)
    if manual_enrollments.applies(filters) and manual_enrollments.any_exist(session):
        # Devices with no DEP record join the page: each side's best candidates (each walking its own index),
        # merged and cut by the database, so the order is the database's for both.
        manual = manual_enrollments.key_query(filters, sort, position, descending=descending, limit=limit + 1)
        both = union_all(select(query.subquery()), select(manual.subquery())).subquery()
        merged = [both.c.sort_value.desc(), both.c.serial.desc()] if descending else [both.c.sort_value, both.c.serial]
        query = select(both).order_by(*merged).limit(limit + 1)
    keys = session.execute(query).all()
    page = keys[:limit]
    ids = [row.device_id for row in page if row.device_id is not None]
    found = {row.id: row for row in session.execute(_device_query().where(Device.id.in_(ids)))} if ids else {}
    enrolled_only = manual_enrollments.read_enrollments(session, [row.udid for row in page if row.device_id is None])
    devices = [_read(found[row.device_id]) if row.device_id is not None else enrolled_only[row.udid] for row in page]
    if setup_watch is not None:
        devices = with_setup_problems(session, devices, watch=setup_watch)
    next_cursor = None
    if len(keys) > limit:
        last = keys[limit - 1]
        next_cursor = encode_cursor(Position(sort=sort, direction=direction, value=last.sort_value, serial=last.serial))
    return InventoryPage(devices=devices, next_cursor=next_cursor)


def find_device(session: Session, *, serial: str, setup_watch: SetupWatch | None = None) -> DeviceRead | None:
    check_text(serial, field="The serial number")
    if not 0 < len(serial) <= _SERIAL_MAX:
        return None
    row = session.execute(_device_query().where(Device.serial_number == serial)).one_or_none()
    device = manual_enrollments.find_enrollment(session, serial=serial) if row is None else _read(row)
    if device is not None and setup_watch is not None:
        (device,) = with_setup_problems(session, [device], watch=setup_watch)
    return device


def get_device(session: Session, *, serial: str, setup_watch: SetupWatch | None = None) -> DeviceRead:
    """One device by serial number (case-sensitive, as Apple's are); :class:`NotFound` with a hint.

    With ``setup_watch``, its setup problem is filled in."""
    device = find_device(session, serial=serial, setup_watch=setup_watch)
    if device is None:
        raise NotFound(
            f"No corporate-owned device has the serial number {serial[:64]!r}.",
            hint="Serial numbers are case-sensitive; `pippin devices list --search TEXT` finds similar ones, "
            "and `pippin dep sync NAME` brings in devices newly assigned in Apple Business Manager.",
        )
    return device


def count_by_state(session: Session) -> dict[DeviceState, int]:
    """How many devices are in each derived state (every state present, zero when none).

    Read from ``device_state_counts``, which the database keeps as devices and enrollments change: a few rows,
    whatever the size of the fleet; devices enrolled without a DEP record are added from their enrollments.
    """
    counts = dict.fromkeys(DeviceState, 0)
    for state, count in session.execute(
        select(DeviceStateCount.state, func.sum(DeviceStateCount.devices)).group_by(DeviceStateCount.state)
    ).all():
        counts[DeviceState(state)] += int(count)
    for state, count in manual_enrollments.count_by_state(session).items():
        counts[state] += count
    return counts


def count_cannot_enroll(session: Session) -> int:
    """How many devices would not enroll if switched on now: Apple holds no profile for them."""
    query = select(func.sum(DeviceStateCount.devices)).where(DeviceStateCount.cannot_enroll.is_(True))
    return int(session.scalar(query) or 0)


def count_assignment_problems(session: Session) -> dict[AssignmentStatus, int]:
    """Devices whose profile could not be given at Apple (failed) or must wait (throttled)."""
    counts = session.execute(
        select(Device.assignment_status, func.count())
        .where(Device.assignment_status.in_((AssignmentStatus.failed, AssignmentStatus.throttled)))
        .group_by(Device.assignment_status)
    ).all()
    return {AssignmentStatus(status): count for status, count in counts if status is not None}
