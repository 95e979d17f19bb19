"""A DEP token with everything that goes with it (devices, queued assignments, sync runs, profile definitions, a
default profile, enrollments) and a second token beside it, for the tests of deleting a token in every layer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.store.models import (
    AuditEvent,
    Base,
    DEPProfile,
    DEPToken,
    Device,
    Enrollment,
    EnrollmentStatus,
    ProfileDefinition,
    SyncRun,
    TokenDefaultProfile,
)

MOMENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

#: What deleting "acme" removes: 4 devices (2 of them queued or retrying), 3 runs, 2 definitions, 2 enrollments.
ACME_COUNTS = {
    "devices": 4,
    "sync_runs": 3,
    "profile_definitions": 2,
    "default_profile": "Staff",
    "pending_assignments": 2,
    "enrollments_unlinked": 2,
}


@dataclass(frozen=True)
class Seeded:
    acme_id: int
    other_id: int


def seed_tokens(session: Session) -> Seeded:
    """Token "acme" with its history, and "other" with one device, a run, a definition and an enrollment."""
    acme = DEPToken(name="acme", status="ok", server_name="Acme iOS", server_uuid="UUID-ACME")
    other = DEPToken(name="other", status="ok")
    staff = DEPProfile(name="Staff", revision=1)
    session.add_all([acme, other, staff])
    session.flush()
    statuses = {"A1": "pending", "A2": "throttled", "A3": "assigned", "A4": None, "O1": "pending"}
    devices = {}
    for serial, status in statuses.items():
        device = Device(
            serial_number=serial,
            token_id=(other if serial.startswith("O") else acme).id,
            apple_record={"serial_number": serial},
            assigned_profile_id=staff.id if status else None,
            assigned_revision=1 if status else None,
            assignment_status=status,
        )
        session.add(device)
        devices[serial] = device
    session.flush()
    for udid, serial in (("UDID-A3", "A3"), ("UDID-A4", "A4"), ("UDID-O1", "O1")):
        session.add(
            Enrollment(
                udid=udid,
                serial_number=serial,
                device_id=devices[serial].id,
                status=EnrollmentStatus.enrolled,
                profile_id=staff.id,
                profile_revision=1,
                first_contact_at=MOMENT,
            )
        )
    for token, runs in ((acme, 3), (other, 1)):
        for n in range(runs):
            session.add(
                SyncRun(
                    token_id=token.id,
                    kind="full",
                    started_at=MOMENT + timedelta(minutes=n),
                    window_ends_at=MOMENT + timedelta(minutes=n + 10),
                    outcome="succeeded",
                )
            )
    for token, revisions in ((acme, (1, 2)), (other, (1,))):
        for revision in revisions:
            session.add(
                ProfileDefinition(
                    profile_id=staff.id, token_id=token.id, revision=revision, profile_uuid=f"{token.name}-{revision}"
                )
            )
    session.add(TokenDefaultProfile(token_id=acme.id, profile_id=staff.id))
    session.flush()
    return Seeded(acme_id=acme.id, other_id=other.id)


def row_counts(session: Session) -> dict[str, int]:
    """How many rows each table holds, audit events included: equal before and after means nothing changed."""
    counts = {}
    for table in Base.metadata.sorted_tables:
        counts[table.name] = session.scalar(select(func.count()).select_from(table)) or 0
    return counts


def linked_enrollments(session: Session) -> dict[str, str | None]:
    """Each enrollment's UDID and the serial of the DEP record it is linked to (None: unlinked)."""
    rows = session.execute(
        select(Enrollment.udid, Device.serial_number).outerjoin(Device, Device.id == Enrollment.device_id)
    )
    return {udid: serial for udid, serial in rows}


def audit_actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
