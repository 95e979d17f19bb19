"""The check-in protocol: what each message a device sends to the CheckInURL does to its enrollment.

Reference ``apple-mdm-protocol.md`` section 2, Apple's ``mdm/checkin/*.yaml`` and the 2026 updates (section 3,
Return to Service; section 4 item 8). The request was read (``mdm/checkin_wire.py``) and its identity proven
(``mdm/device_auth.py``) before it gets here; this module binds the identity, writes the enrollment, keeps the
raw message, and says what to answer. It runs in the caller's transaction and never commits.

- Authenticate binds the identity to the UDID and serial, and starts (or restarts: a new Authenticate for a
  known UDID is a re-enrollment, which cancels the commands still waiting for it) the enrollment as
  ``enrolling``; it is not pushed until its TokenUpdate. Its Topic must be the push certificate's: a device
  enrolled under another topic cannot be woken.
- TokenUpdate gives the push token and PushMagic; the enrollment is ``enrolled`` and the push layer watches it.
  The UnlockToken is kept sealed, and kept when a later TokenUpdate omits it. The first one that says
  AwaitingConfiguration starts the device's release from Setup Assistant (``mdm/setup_release.py``).
- CheckOut records that the device left (``unenrolled``). It is sent once, best effort, and may never come.
- SetBootstrapToken / GetBootstrapToken keep and return the bootstrap token, sealed.
- ReturnToService answers the configuration ``PIPPIN_RETURN_TO_SERVICE`` allows (off by default).
- DeclarativeManagement is answered as a server without declarations: a declaration fetch 404 (Apple: the device
  then removes it), anything else refused until declarative management is built.
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.errors import InvalidInput, NotFound
from pippin.mdm.checkin_wire import CheckinRefused, CheckinRequest, MessageType
from pippin.mdm.command_queue import cancel_waiting_commands
from pippin.mdm.device_auth import AuthenticatedDevice, DeviceAuthenticationRefused, check_device_binding
from pippin.mdm.identities import IdentityBinding, IdentityStore
from pippin.mdm.setup_release import start_release
from pippin.mdm.webhooks import record_checkin_event
from pippin.push.sweep import watch_enrollment
from pippin.store.models import (
    PUSH_CERTIFICATE_ID,
    CheckinMessage,
    Device,
    Enrollment,
    EnrollmentStatus,
    PushCertificate,
)

#: Raw messages kept per enrollment: enough to read the last enrollment's messages again, bounded per device.
KEPT_MESSAGES = 20
_TOPIC_CHARS = 255
#: APNs tokens are 32 bytes today; Apple said they would grow (reference section 2), so allow some room.
_MAX_TOKEN_BYTES = 100
_MAX_SECRET_BYTES = 16 * 1024
_PLIST = "application/xml"


class DeclarationNotFound(NotFound):
    """A declaration fetch while Pippin serves no declarations (404: the device removes what it holds)."""


@dataclass(frozen=True)
class CheckinAnswer:
    """What the device is answered: 200 with an empty body unless the message asks for something."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = None


def _plist(value: dict[str, object]) -> CheckinAnswer:
    return CheckinAnswer(body=plistlib.dumps(value, fmt=plistlib.FMT_XML), content_type=_PLIST)


def _push_topic(session: Session) -> str | None:
    return session.scalar(select(PushCertificate.topic).where(PushCertificate.id == PUSH_CERTIFICATE_ID))


def _record(
    session: Session, request: CheckinRequest, device: AuthenticatedDevice, *, box: SecretBox, now: datetime
) -> None:
    """Keep the raw message, sealed, and only the last :data:`KEPT_MESSAGES` of this enrollment."""
    session.add(
        CheckinMessage(
            udid=request.udid,
            message_type=request.message_type.value,
            received_at=now,
            identity_fingerprint=device.fingerprint,
            raw_encrypted=box.encrypt(request.raw),
        )
    )
    session.flush()
    kept = (
        select(CheckinMessage.id)
        .where(CheckinMessage.udid == request.udid)
        .order_by(CheckinMessage.id.desc())
        .offset(KEPT_MESSAGES)
        .limit(1)
    )
    oldest_dropped = session.scalar(kept)
    if oldest_dropped is not None:
        session.execute(
            delete(CheckinMessage).where(CheckinMessage.udid == request.udid, CheckinMessage.id <= oldest_dropped)
        )


def _topic(request: CheckinRequest) -> str:
    topic = request.text("Topic", max_chars=_TOPIC_CHARS)
    if topic is None:
        raise CheckinRefused("The check-in names no Topic.")
    return topic


def _authenticate(
    session: Session,
    request: CheckinRequest,
    device: AuthenticatedDevice,
    *,
    identities: IdentityStore,
    now: datetime,
) -> Enrollment:
    topic = _topic(request)
    if topic != _push_topic(session):
        raise CheckinRefused("The check-in's Topic is not this server's push topic; enroll again with its profile.")
    serial = request.text("SerialNumber", max_chars=64)
    facts = {
        "os_version": request.text("OSVersion", max_chars=32),
        "build_version": request.text("BuildVersion", max_chars=32),
        "product_name": request.text("ProductName", max_chars=64),
        "imei": request.text("IMEI", max_chars=32),
        "meid": request.text("MEID", max_chars=32),
    }
    binding = (
        check_device_binding(
            session, device, udid=request.udid, serial_number=serial, identities=identities, may_bind=True
        )
        or IdentityBinding()
    )
    serial = serial or binding.serial_number
    dep_device = (
        session.execute(
            select(Device.id, Device.assigned_profile_id, Device.assigned_revision).where(
                Device.serial_number == serial
            )
        ).one_or_none()
        if serial
        else None
    )
    enrollment = session.get(Enrollment, request.udid, with_for_update=True)
    if enrollment is None:
        enrollment = Enrollment(udid=request.udid, status=EnrollmentStatus.enrolling, first_contact_at=now)
        session.add(enrollment)
    else:
        # A re-enrollment: the device starts over (often erased), so what waited for it before is canceled.
        cancel_waiting_commands(session, udid=request.udid, now=now)
    _link(session, enrollment, dep_device.id if dep_device is not None else None)
    enrollment.serial_number = serial
    enrollment.status = EnrollmentStatus.enrolling
    if binding.profile_id is not None:
        enrollment.profile_id, enrollment.profile_revision = binding.profile_id, binding.profile_revision
    elif dep_device is not None:
        enrollment.profile_id, enrollment.profile_revision = (
            dep_device.assigned_profile_id,
            dep_device.assigned_revision,
        )
    if binding.primary_user_id is not None:
        enrollment.primary_user_id = binding.primary_user_id
    enrollment.identity_fingerprint = device.fingerprint
    enrollment.topic = topic
    for name, value in facts.items():
        setattr(enrollment, name, value)
    # PushMagic changes at every enrollment: the old one would make the device ignore pushes until TokenUpdate.
    enrollment.push_token = enrollment.push_magic = None
    enrollment.authenticated_at = enrollment.last_seen_at = now
    enrollment.unenrolled_at = None
    session.flush()
    return enrollment


def _enrollment_of(
    session: Session, request: CheckinRequest, device: AuthenticatedDevice, *, identities: IdentityStore
) -> Enrollment:
    """The enrollment the message speaks for: its identity must be the one its last Authenticate bound."""
    check_device_binding(session, device, udid=request.udid, serial_number=None, identities=identities, may_bind=False)
    enrollment = session.get(Enrollment, request.udid, with_for_update=True)
    if enrollment is None or enrollment.identity_fingerprint != device.fingerprint:
        raise DeviceAuthenticationRefused(
            "The identity certificate is not this enrollment's; the device must send Authenticate first."
        )
    topic = request.fields.get("Topic")
    if topic is not None and topic != enrollment.topic:
        raise CheckinRefused("The check-in's Topic is not the one the device enrolled with.")
    return enrollment


def _link(session: Session, enrollment: Enrollment, device_id: int | None) -> None:
    """Tie ``enrollment`` to the DEP record ``device_id`` (or to none)."""
    if device_id is not None and enrollment.device_id != device_id:
        # One enrollment per DEP record: a device that enrolled before under another UDID leaves that one.
        # Not flushed first: this enrollment's pending changes go out with the caller's flush, in one statement.
        with session.no_autoflush:
            session.execute(
                update(Enrollment)
                .where(Enrollment.device_id == device_id, Enrollment.udid != enrollment.udid)
                .values(device_id=None)
            )
    enrollment.device_id = device_id


def _link_late_dep_record(session: Session, enrollment: Enrollment) -> None:
    """A device enrolled before Apple's record of it reached Pippin (a manual enrollment, then a sync): tied to that
    record at its next message, so the inventory shows one device, not two. Only the device half writes enrollments
    (DESIGN.md), so the sync leaves this to the device's check-ins; a lookup by serial, only while unlinked."""
    if enrollment.device_id is not None or not enrollment.serial_number:
        return
    device_id = session.scalar(select(Device.id).where(Device.serial_number == enrollment.serial_number))
    if device_id is not None:
        _link(session, enrollment, device_id)


def _token_update(
    session: Session,
    request: CheckinRequest,
    enrollment: Enrollment,
    *,
    box: SecretBox,
    settings: Settings,
    now: datetime,
) -> None:
    token = request.data("Token", max_bytes=_MAX_TOKEN_BYTES)
    magic = request.text("PushMagic", max_chars=200)
    if not token or magic is None:
        raise CheckinRefused("The TokenUpdate carries no push Token and PushMagic.")
    unlock_token = request.data("UnlockToken", max_bytes=_MAX_SECRET_BYTES)
    awaiting = request.flag("AwaitingConfiguration")
    if enrollment.status is not EnrollmentStatus.enrolled:
        enrollment.enrolled_at = now
    enrollment.status = EnrollmentStatus.enrolled
    enrollment.push_token, enrollment.push_magic = token.hex(), magic
    if unlock_token:
        enrollment.unlock_token_encrypted = box.encrypt(unlock_token)
    if awaiting is not None:
        enrollment.awaiting_configuration = awaiting
    enrollment.unenrolled_at = None
    session.flush()
    watch_enrollment(session, udid=enrollment.udid, settings=settings, now=now)
    start_release(session, enrollment, awaiting=awaiting, box=box, settings=settings, now=now)


def _declarative_management(request: CheckinRequest) -> CheckinAnswer:
    endpoint = request.text("Endpoint", max_chars=300) or ""
    if endpoint.startswith("declaration/"):
        raise DeclarationNotFound("This server holds no declarations.")
    raise CheckinRefused("This server does not offer declarative management yet.")


def _webhook(
    session: Session, request: CheckinRequest, *, topic: str | None, box: SecretBox, settings: Settings, now: datetime
) -> None:
    """The accepted message's webhook event (``mdm.<MessageType>``, its raw plist), when webhooks are configured."""
    record_checkin_event(
        session,
        settings=settings,
        message_type=request.message_type.value,
        udid=request.udid,
        topic=topic,
        raw=request.raw,
        now=now,
        box=box,
    )


def handle_checkin(
    session: Session,
    request: CheckinRequest,
    device: AuthenticatedDevice,
    *,
    identities: IdentityStore,
    box: SecretBox,
    settings: Settings,
    now: datetime,
) -> CheckinAnswer:
    """Do what ``request`` (from the authenticated ``device``) asks, in the caller's transaction; the answer.

    Refused messages (:class:`CheckinRefused`, :class:`DeviceAuthenticationRefused`) change nothing: the caller's
    transaction rolls back.
    """
    kind = request.message_type
    if kind is MessageType.authenticate:
        enrolling = _authenticate(session, request, device, identities=identities, now=now)
        _record(session, request, device, box=box, now=now)
        _webhook(session, request, topic=enrolling.topic, box=box, settings=settings, now=now)
        return CheckinAnswer()
    if kind is MessageType.user_authenticate:
        # Apple's documented decline of a user channel (macOS only): 410.
        return CheckinAnswer(status=410, body=b"User channels are not offered.", content_type="text/plain")
    if kind is MessageType.get_token:
        raise CheckinRefused("This server issues no tokens (GetToken).")
    enrollment = _enrollment_of(session, request, device, identities=identities)
    if kind is MessageType.declarative_management:
        return _declarative_management(request)
    # Set before the message's own changes, so they are written together.
    enrollment.last_seen_at = now
    answer = CheckinAnswer()
    if kind is MessageType.token_update:
        _token_update(session, request, enrollment, box=box, settings=settings, now=now)
    elif kind is MessageType.check_out:
        enrollment.status = EnrollmentStatus.unenrolled
        enrollment.unenrolled_at = now
    elif kind is MessageType.set_bootstrap_token:
        bootstrap = request.data("BootstrapToken", max_bytes=_MAX_SECRET_BYTES)
        # An empty token (or none) removes the one kept (Apple's SetBootstrapToken).
        enrollment.bootstrap_token_encrypted = box.encrypt(bootstrap) if bootstrap else None
        awaiting = request.flag("AwaitingConfiguration")
        if awaiting is not None:
            enrollment.awaiting_configuration = awaiting
    elif kind is MessageType.get_bootstrap_token:
        if enrollment.bootstrap_token_encrypted is not None:
            answer = _plist({"BootstrapToken": box.decrypt(enrollment.bootstrap_token_encrypted)})
    elif kind is MessageType.return_to_service:
        configuration: dict[str, object] = {"Enabled": settings.return_to_service}
        if settings.return_to_service and enrollment.bootstrap_token_encrypted is not None:
            configuration["BootstrapToken"] = box.decrypt(enrollment.bootstrap_token_encrypted)
        answer = _plist({"ReturnToService": configuration})
    else:  # pragma: no cover - every MessageType is handled above
        raise InvalidInput(f"Check-in messages of type {kind.value} are not answered.")
    _link_late_dep_record(session, enrollment)
    _record(session, request, device, box=box, now=now)
    _webhook(session, request, topic=enrollment.topic, box=box, settings=settings, now=now)
    return answer


_ENROLLMENTS = cast(Table, Enrollment.__table__)
#: The enrollment seen now, and what the checks of a report need read back, in one statement and without loading
#: the whole row: an Idle, the message a fleet sends most, needs no more of it. Written first: on PostgreSQL the row
#: lock taken here orders two reports of one device, so each reads the queue as the other left it.
_MARK_SEEN = (
    update(_ENROLLMENTS)
    .where(_ENROLLMENTS.c.udid == bindparam("b_udid"))
    .values(last_seen_at=bindparam("b_now"))
    .returning(
        _ENROLLMENTS.c.identity_fingerprint,
        _ENROLLMENTS.c.status,
        _ENROLLMENTS.c.device_id,
        _ENROLLMENTS.c.serial_number,
    )
)


def mark_connected(
    session: Session, *, udid: str, device: AuthenticatedDevice, identities: IdentityStore, now: datetime
) -> None:
    """The enrolled device reporting at the ServerURL (``mdm/connect.py``) is seen now; refused when the identity is
    not its enrollment's or it is not enrolled (the caller rolls back, so the refusal changes nothing)."""
    check_device_binding(session, device, udid=udid, serial_number=None, identities=identities, may_bind=False)
    row = session.connection().execute(_MARK_SEEN, {"b_udid": udid, "b_now": now}).one_or_none()
    if row is None or row.identity_fingerprint != device.fingerprint:
        raise DeviceAuthenticationRefused("The identity certificate is not this enrollment's.")
    if row.status is not EnrollmentStatus.enrolled:
        raise CheckinRefused("The device is not enrolled; it must check in (Authenticate, TokenUpdate) first.")
    if row.device_id is None and row.serial_number:
        enrollment = session.get(Enrollment, udid)
        assert enrollment is not None  # the UPDATE above found it, in this transaction
        _link_late_dep_record(session, enrollment)
        session.flush()
