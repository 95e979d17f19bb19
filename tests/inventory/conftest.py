"""A small fleet covering every derived state, two tokens, profiles and assignment statuses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from pippin.store.models import DEPProfile, DEPToken, Device, Enrollment, EnrollmentStatus

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    serial: str
    token: str | None
    model: str | None
    tag: str | None
    description: str | None
    apple_status: str
    profile_status: str | None
    assignment: str | None  # Pippin's assignment status; the profile is Staff revision 2 when set
    enrollment: EnrollmentStatus | None
    enrolled_revision: int | None
    synced_minutes_ago: int


FLEET = [
    Row("C02A", "acme", "iPhone 15", "TAG-1", "IPHONE 15 BLACK", "assigned", "empty", None, None, None, 5),
    Row("C02B", "acme", "iPad Air", None, "IPAD AIR 100%_BLUE", "assigned", "pushed", "assigned",
        EnrollmentStatus.enrolled, 2, 1),
    Row("C02C", "acme", "iPhone 13", "TAG-3", None, "assigned", "pushed", "assigned", EnrollmentStatus.enrolled, 1, 3),
    Row("DX9", "other", "iPhone 14", "tag-2", None, "removed", "empty", "failed", None, None, 9),
    Row("E11", "other", None, None, None, "assigned", "assigned", "pending", EnrollmentStatus.unenrolled, 2, 3),
    Row("E12", "other", "iPad mini", None, None, "assigned", "removed", None, EnrollmentStatus.failed, None, 7),
    Row("F00", None, "iPad mini", None, "IPAD MINI", "assigned", "assigned", "throttled", None, None, 2),
]  # fmt: skip

#: The derived state of each, by the rules in ``pippin.inventory.state``.
STATES = {
    "C02A": "not_contacted",
    "C02B": "enrolled",
    "C02C": "pending_reset",
    "DX9": "removed",
    "E11": "unenrolled",
    "E12": "failed",
    "F00": "not_contacted",
}


@pytest.fixture
def fleet(session: Session) -> dict[str, Row]:
    tokens = {"acme": DEPToken(name="acme"), "other": DEPToken(name="other")}
    staff = DEPProfile(name="Staff", revision=2)
    session.add_all([*tokens.values(), staff])
    session.flush()
    for row in FLEET:
        device = Device(
            serial_number=row.serial,
            token_id=tokens[row.token].id if row.token else None,
            model=row.model,
            asset_tag=row.tag,
            description=row.description,
            apple_status=row.apple_status,
            profile_status=row.profile_status,
            first_seen_at=NOW,
            last_synced_at=NOW - timedelta(minutes=row.synced_minutes_ago),
            apple_record={"serial_number": row.serial},
            assigned_profile_id=staff.id if row.assignment else None,
            assigned_revision=2 if row.assignment else None,
            assignment_status=row.assignment,
        )
        session.add(device)
        session.flush()
        if row.enrollment is not None:
            session.add(
                Enrollment(
                    udid=f"UDID-{row.serial}",
                    serial_number=row.serial,
                    device_id=device.id,
                    status=row.enrollment,
                    profile_id=staff.id if row.enrolled_revision else None,
                    profile_revision=row.enrolled_revision,
                    first_contact_at=NOW,
                    enrolled_at=NOW,
                    last_seen_at=NOW,
                )
            )
    session.flush()
    return {row.serial: row for row in FLEET}
