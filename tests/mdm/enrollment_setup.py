"""What an ADE enrollment needs in the database: a push certificate in force, and devices Apple assigned with a
Pippin profile (or not), written as the push certificate store and the DEP sync would write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.store.models import (
    PUSH_CERTIFICATE_ID,
    DEPProfile,
    DEPToken,
    Device,
    Enrollment,
    EnrollmentStatus,
    PushCertificate,
    SetupRelease,
)
from tests.push.identities import push_identity

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOPIC = "com.apple.mgmt.External.5e3f2c1a-8d4b-4f0e-9a7c-2b1d6e8f9a0b"
ORGANIZATION = "Acme Logistics AB"


def activate_push_certificate(session: Session, *, not_after: datetime = NOW + timedelta(days=365)) -> None:
    identity = push_identity(topic=TOPIC)
    session.merge(
        PushCertificate(
            id=PUSH_CERTIFICATE_ID,
            certificate_pem=identity.certificate_pem.decode(),
            topic=TOPIC,
            not_after=not_after,
            fingerprint=identity.fingerprint,
            uploaded_at=NOW - timedelta(days=1),
        )
    )
    session.flush()


def dep_profile(session: Session, *, name: str = "Staff", locked: bool = True, revision: int = 3) -> DEPProfile:
    profile = DEPProfile(name=name, revision=revision, is_mdm_removable=not locked, is_supervised=True)
    session.add(profile)
    session.flush()
    return profile


def assigned_device(
    session: Session,
    serial: str,
    *,
    profile: DEPProfile | None,
    profile_status: str = "pushed",
    apple_status: str = "assigned",
    with_token: bool = True,
) -> Device:
    """A device as the sync writes it: assigned to a token of this server at Apple, with ``profile`` assigned."""
    token = session.execute(select(DEPToken).where(DEPToken.name == "acme")).scalar_one_or_none()
    if token is None and with_token:
        token = DEPToken(name="acme", org_name=ORGANIZATION)
        session.add(token)
        session.flush()
    device = Device(
        serial_number=serial,
        token_id=token.id if with_token and token is not None else None,
        model="iPhone 15",
        apple_status=apple_status,
        profile_status=profile_status,
        apple_record={"serial_number": serial},
        assigned_profile_id=profile.id if profile is not None else None,
        assigned_revision=profile.revision if profile is not None else None,
        assignment_status="assigned" if profile is not None else None,
    )
    session.add(device)
    session.flush()
    return device


STUCK_SERIAL = "F5JM992LF193"
STUCK_UDID = "UDID-STUCK"


def stuck_in_setup_assistant(
    session: Session, *, started: datetime, steps: list[dict[str, str]], configured_uuid: str | None = None
) -> None:
    """A device enrolled through ADE that is still waiting in Setup Assistant, its release started at ``started``
    with ``steps`` (``mdm/setup_release.py``'s record of the enrollment-time commands)."""
    device = Device(serial_number=STUCK_SERIAL, apple_record={}, apple_status="assigned", profile_status="pushed")
    session.add(device)
    session.flush()
    session.add(
        Enrollment(
            udid=STUCK_UDID,
            serial_number=STUCK_SERIAL,
            device_id=device.id,
            status=EnrollmentStatus.enrolled,
            identity_fingerprint="a" * 64,
            enrolled_at=started,
            awaiting_configuration=True,
        )
    )
    session.flush()
    session.add(
        SetupRelease(
            udid=STUCK_UDID,
            identity_fingerprint="a" * 64,
            started_at=started,
            steps=steps,
            configured_uuid=configured_uuid,
        )
    )
