"""Devices enrolled with no DEP record (manual enrollment links), as the inventory lists and shows them.

DESIGN.md, "Device states": such a device has an enrollment and no row in ``devices``. The inventory lists it
among the others, by its serial number when it reported one (its UDID otherwise), with its enrollment's fields
and the state the same rules give with no Apple side. Only filters that enrollments can answer keep them (the
state, the search and unreachable); a filter on Apple's side (token, profile, assignment, cannot enroll) leaves
them out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, String, and_, exists, func, literal, or_, select, tuple_
from sqlalchemy.orm import Session

from pippin.inventory.cursor import Position
from pippin.inventory.reachability import refused_token_condition, unreachable_columns
from pippin.inventory.schemas import ENROLLMENT_FIELDS, DeviceFilters, DeviceRead, DeviceSort
from pippin.inventory.state import DeviceState, derive_state, enrollment_only_state_expression
from pippin.store.matching import contains_ignoring_case
from pippin.store.models import DirectoryUser, Enrollment, PushDelivery

_Query = Select[*tuple[Any, ...]]


def _serial() -> ColumnElement[str]:
    return func.coalesce(Enrollment.serial_number, Enrollment.udid)


def _manual() -> ColumnElement[bool]:
    return Enrollment.device_id.is_(None)


def applies(filters: DeviceFilters) -> bool:
    """Whether enrollments without a DEP record can match ``filters`` at all."""
    return not (filters.token or filters.profile or filters.assignment is not None or filters.cannot_enroll)


def any_exist(session: Session) -> bool:
    return bool(session.scalar(select(exists().where(_manual()))))


def count_by_state(session: Session) -> dict[DeviceState, int]:
    """How many enrollments without a DEP record are in each state. Not kept by ``device_state_counts``'s triggers
    (they count DEP records): counted here over the enrollments index, a cost that grows with manual enrollments
    only, never with the DEP fleet."""
    state = enrollment_only_state_expression()
    rows = session.execute(select(state, func.count()).where(_manual()).group_by(state)).all()
    return {DeviceState(value): int(count) for value, count in rows}


def sort_key(sort: DeviceSort) -> ColumnElement[Any]:
    """The value an enrollment sorts by, for each of the inventory's orders (see ``inventory/devices.py``)."""
    if sort is DeviceSort.serial:
        return _serial()
    if sort is DeviceSort.state:
        return enrollment_only_state_expression()
    if sort is DeviceSort.last_synced:
        # Never synced: ordered by its last check-in, among the devices' last syncs.
        return func.coalesce(Enrollment.last_seen_at, Enrollment.first_contact_at)
    if sort is DeviceSort.model:
        return func.coalesce(Enrollment.product_name, "")
    return literal("", type_=String)


def key_query(
    filters: DeviceFilters, sort: DeviceSort, position: Position | None, *, descending: bool, limit: int
) -> _Query:
    """The page's candidates among enrollments with no DEP record, in the columns of the inventory's key query:
    (device id, udid, serial, sort value), ordered and limited like the devices' own."""
    key, serial = sort_key(sort), _serial()
    query = select(
        literal(None, type_=Integer).label("device_id"),
        Enrollment.udid.label("udid"),
        serial.label("serial"),
        key.label("sort_value"),
    ).where(_manual())
    if filters.unreachable:
        query = query.join(PushDelivery, refused_token_condition())
    if filters.state is not None:
        query = query.where(enrollment_only_state_expression() == filters.state.value)
    if filters.search:
        columns = (Enrollment.serial_number, Enrollment.udid, Enrollment.product_name)
        query = query.where(or_(*(contains_ignoring_case(column, filters.search) for column in columns)))
    if position is not None:
        ours, theirs = tuple_(key, serial), tuple_(position.value, position.serial)
        query = query.where(ours < theirs if descending else ours > theirs)
    order = [key.desc(), serial.desc()] if descending else [key.asc(), serial.asc()]
    return query.order_by(*order).limit(limit)


def read_enrollments(session: Session, udids: list[str]) -> dict[str, DeviceRead]:
    """The enrollments ``udids`` as inventory rows."""
    if not udids:
        return {}
    rows = session.execute(_enrollment_query().where(Enrollment.udid.in_(udids), _manual())).all()
    return {row[0].udid: _read(row) for row in rows}


def find_enrollment(session: Session, *, serial: str) -> DeviceRead | None:
    """The enrollment with no DEP record whose serial number (or, when it reported none, UDID) is ``serial``."""
    row = session.execute(
        _enrollment_query().where(
            _manual(),
            or_(
                Enrollment.serial_number == serial, and_(Enrollment.serial_number.is_(None), Enrollment.udid == serial)
            ),
        )
    ).first()
    return None if row is None else _read(row)


def _state(enrollment: Enrollment) -> DeviceState:
    return derive_state(
        apple_status=None,
        assigned_profile_id=None,
        assigned_revision=None,
        enrollment_status=enrollment.status,
        enrolled_profile_id=enrollment.profile_id,
        enrolled_revision=enrollment.profile_revision,
    )


def _enrollment_query() -> Select[Enrollment, str | None, bool, str | None, Any]:
    """An enrollment with its primary user's username and whether it is unreachable, in one row."""
    return (
        select(Enrollment, DirectoryUser.username, *unreachable_columns())
        .outerjoin(DirectoryUser, DirectoryUser.id == Enrollment.primary_user_id)
        .outerjoin(PushDelivery, PushDelivery.udid == Enrollment.udid)
    )


def _read(row: Any) -> DeviceRead:
    enrollment, primary_user, unreachable, reason, since = row
    return DeviceRead(
        **dict.fromkeys(_APPLE_RECORD_FIELDS),
        serial_number=enrollment.serial_number or enrollment.udid,
        model=enrollment.product_name,
        enrollment_state=_state(enrollment),
        enrollment_status=enrollment.status,
        **{name: getattr(enrollment, name) for name in ENROLLMENT_FIELDS},
        primary_user=primary_user,
        has_dep_record=False,
        unreachable=bool(unreachable),
        unreachable_reason=reason,
        unreachable_since=since,
    )


#: What only Apple's record of a device tells (every field a device row must have, but its serial, model and
#: state): null for a device Apple never told Pippin of.
_APPLE_RECORD_FIELDS = tuple(
    name
    for name, field in DeviceRead.model_fields.items()
    if field.is_required() and name not in ("serial_number", "model", "enrollment_state")
)
