"""Devices to send commands to, as the sync and the device half write them: DEP records with enrollments in each
status, and a device enrolled through a manual link (no DEP record)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from pippin.store.models import DEPToken, Device, Enrollment, EnrollmentStatus

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def enrolled_device(
    session: Session,
    serial: str,
    *,
    status: EnrollmentStatus = EnrollmentStatus.enrolled,
    dep: bool = True,
    token: DEPToken | None = None,
    os_version: str = "17.4",
    supervised: bool | None = True,
    unlock_token: bytes | None = None,
) -> str:
    """A device with an enrollment in ``status`` (a push token when enrolled); returns its UDID."""
    device_id = None
    if dep:
        device = Device(
            serial_number=serial,
            token_id=token.id if token is not None else None,
            model="iPhone 15",
            profile_status="pushed",
            first_seen_at=NOW,
            last_synced_at=NOW,
            apple_record={},
        )
        session.add(device)
        session.flush()
        device_id = device.id
    udid = f"UDID-{serial}"
    session.add(
        Enrollment(
            udid=udid,
            serial_number=serial,
            device_id=device_id,
            status=status,
            first_contact_at=NOW,
            enrolled_at=NOW if status is EnrollmentStatus.enrolled else None,
            last_seen_at=NOW,
            push_token="ab" * 32 if status is EnrollmentStatus.enrolled else None,
            push_magic="magic-" + serial,
            topic="com.apple.mgmt.External.test",
            os_version=os_version,
            product_name="iPhone16,2",
            supervised=supervised,
            unlock_token_encrypted=unlock_token,
        )
    )
    session.flush()
    return udid


def acme_token(session: Session) -> DEPToken:
    token = DEPToken(name="acme", status="ok")
    session.add(token)
    session.flush()
    return token
