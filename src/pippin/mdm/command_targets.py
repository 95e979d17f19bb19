"""Which enrollment an admin's command goes to: devices named by serial number, or chosen by the inventory's
filters.

A serial number names the enrollment of its DEP record, or (for a device enrolled through a manual link) the
enrollment that reported that serial number, or whose UDID it is when the device reported none: the same
devices ``pippin devices show`` finds. Only an enrollment in ``enrolled`` has a push token and fetches commands,
so a command for any other is refused rather than queued to wait forever. Filters are the inventory's own
(``pippin.inventory.devices.list_devices``), so a filter picks the same devices in the device list and here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from pippin.errors import Conflict, InvalidInput, NotFound
from pippin.inventory import devices as inventory_service
from pippin.inventory.schemas import DeviceFilters
from pippin.mdm.command_catalog import DeviceFacts
from pippin.store.models import Device, Enrollment, EnrollmentStatus
from pippin.text import check_text

MAX_SERIAL_CHARS = 64
#: Serial numbers looked up per query (well under every database's limit of bound parameters).
_CHUNK = 500
#: How many unknown or unenrolled serial numbers an error names.
_NAMED = 5


class DeviceNotEnrolled(Conflict):
    """The device exists but is not enrolled (never, not yet, or no longer): it fetches no commands."""

    code = "device_not_enrolled"


@dataclass(frozen=True)
class CommandTarget:
    """One enrolled device a command can be queued for."""

    serial_number: str
    udid: str
    facts: DeviceFacts


def device_facts(enrollment: Enrollment) -> DeviceFacts:
    """What the catalog checks a command against, from what the device reported."""
    return DeviceFacts(
        os_version=enrollment.os_version,
        supervised=enrollment.supervised,
        product_name=enrollment.product_name,
        # An enrollment of a DEP record came through Setup Assistant; one without came through a manual link.
        enrolled_through_ade=enrollment.device_id is not None,
    )


def _check_serial(serial: str) -> None:
    check_text(serial, field="The serial number")
    if not 0 < len(serial) <= MAX_SERIAL_CHARS:
        raise InvalidInput(
            f"A serial number has 1 to {MAX_SERIAL_CHARS} characters; this one has {len(serial)}.",
            hint="`pippin devices list --search TEXT` finds a device's serial number.",
        )


def _candidates(session: Session, serials: Sequence[str]) -> dict[str, list[Enrollment]]:
    """Every enrollment each serial number may name, best first: its DEP record's, then the enrolled ones, the
    most recently seen first."""
    found: dict[str, list[Enrollment]] = {serial: [] for serial in serials}
    for enrollment, serial in session.execute(
        select(Enrollment, Device.serial_number)
        .join(Device, Device.id == Enrollment.device_id)
        .where(Device.serial_number.in_(serials))
    ):
        found[serial].append(enrollment)
    manual = session.scalars(
        select(Enrollment).where(
            or_(
                Enrollment.serial_number.in_(serials),
                and_(Enrollment.serial_number.is_(None), Enrollment.udid.in_(serials)),
            )
        )
    )
    for enrollment in sorted(manual, key=lambda e: e.last_seen_at or e.first_contact_at, reverse=True):
        serial = enrollment.serial_number or enrollment.udid
        if serial in found and enrollment not in found[serial]:
            found[serial].append(enrollment)
    return found


def _known_devices(session: Session, serials: Sequence[str]) -> set[str]:
    return set(session.scalars(select(Device.serial_number).where(Device.serial_number.in_(serials))))


def _refuse(serials: list[str], *, what: str, error: Callable[..., Exception], hint: str) -> None:
    if not serials:
        return
    named = ", ".join(repr(serial) for serial in serials[:_NAMED])
    more = f" and {len(serials) - _NAMED} more" if len(serials) > _NAMED else ""
    raise error(f"{what}: {named}{more}. Nothing was queued.", hint=hint)


def find_targets(session: Session, *, serials: Iterable[str]) -> list[CommandTarget]:
    """The enrolled device of each serial number (once each, in the order given); refuses the whole list when
    any is unknown (:class:`NotFound`) or not enrolled (:class:`DeviceNotEnrolled`), naming them."""
    wanted = list(dict.fromkeys(serials))
    for serial in wanted:
        _check_serial(serial)
    targets: dict[str, CommandTarget] = {}
    unknown: list[str] = []
    not_enrolled: list[str] = []
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        candidates = _candidates(session, chunk)
        devices = _known_devices(session, chunk)
        for serial in chunk:
            enrolled = [e for e in candidates[serial] if e.status is EnrollmentStatus.enrolled]
            if enrolled:
                targets[serial] = CommandTarget(
                    serial_number=serial, udid=enrolled[0].udid, facts=device_facts(enrolled[0])
                )
            elif candidates[serial] or serial in devices:
                not_enrolled.append(serial)
            else:
                unknown.append(serial)
    _refuse(
        unknown,
        what="No device has these serial numbers" if len(unknown) > 1 else "No device has the serial number",
        error=NotFound,
        hint="Serial numbers are case-sensitive; `pippin devices list --search TEXT` finds similar ones.",
    )
    _refuse(
        not_enrolled,
        what="These devices are not enrolled" if len(not_enrolled) > 1 else "This device is not enrolled",
        error=DeviceNotEnrolled,
        hint="Only an enrolled device fetches commands; `pippin devices show SERIAL` shows its state.",
    )
    return [targets[serial] for serial in wanted]


def get_target(session: Session, *, serial: str) -> CommandTarget:
    """The enrolled device with this serial number, or :class:`NotFound` / :class:`DeviceNotEnrolled`."""
    return find_targets(session, serials=[serial])[0]


def get_enrollment_udid(session: Session, *, serial: str) -> str:
    """The UDID whose commands a serial number lists: its enrolled enrollment, else its latest one (a device that
    checked out keeps its history)."""
    _check_serial(serial)
    candidates = _candidates(session, [serial])[serial]
    if not candidates:
        _refuse(
            [serial],
            what="No enrolled or formerly enrolled device has the serial number",
            error=NotFound,
            hint="Serial numbers are case-sensitive; `pippin devices list --search TEXT` finds similar ones.",
        )
    enrolled = [e for e in candidates if e.status is EnrollmentStatus.enrolled]
    return (enrolled or candidates)[0].udid


@dataclass(frozen=True)
class FilteredTargets:
    """The enrolled devices a filter matched, and how many it matched that are not enrolled (left out)."""

    udids: list[str]
    not_enrolled: int


def filter_targets(session: Session, *, filters: DeviceFilters) -> FilteredTargets:
    """Every enrolled device matching ``filters``, walking the inventory page by page."""
    udids: list[str] = []
    not_enrolled = 0
    cursor: str | None = None
    while True:
        page = inventory_service.list_devices(session, filters=filters, limit=inventory_service.MAX_PAGE, cursor=cursor)
        for device in page.devices:
            if device.udid is not None and device.enrollment_status is EnrollmentStatus.enrolled:
                udids.append(device.udid)
            else:
                not_enrolled += 1
        cursor = page.next_cursor
        if cursor is None:
            return FilteredTargets(udids=list(dict.fromkeys(udids)), not_enrolled=not_enrolled)
