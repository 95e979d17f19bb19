"""User affinity: the enrollment sign-in page a device opens in Setup Assistant, then the profile it installs.

A profile with user affinity gives Apple a ``configuration_web_url`` (``dep/profiles.py:enrollment_urls``):
``/enroll/web/{reference}``, the reference naming the profile and revision (``dep/enrollment_reference.py``).
The device opens it in a web view with its signed MachineInfo in the ``x-apple-aspen-deviceinfo`` header
(reference ``apple-mdm-updates-2026.md`` section 3); the interface verifies that header, and here:

- :func:`open_page` checks the reference, that the device is one this server manages and that it runs the
  profile's minimum OS version (or cannot update to it), and opens a single-use state bound to its serial number
  and UDID (``mdm/enrollment_web_states.py``: web views lose cookies);
- :func:`sign_in_and_enroll` takes the state and an organisation user's sign-in (``admin/directory.py``, with
  the sign-in throttle), ends the state and returns the signed enrollment profile
  (``mdm/enrollment_profile.py``) whose challenge binds the device and, as its primary user, the user. Check-in
  records the primary user from that binding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.admin import directory
from pippin.admin.audit import Actor
from pippin.admin.passwords import PasswordWork
from pippin.admin.users import SignInFailed
from pippin.config import Settings
from pippin.crypto.keys import KeyGenerator
from pippin.crypto.secrets import SecretBox
from pippin.dep.enrollment_reference import ProfileRevision, read_reference
from pippin.errors import InvalidInput, NotFound, PippinError
from pippin.mdm import enrollment_web_states as states
from pippin.mdm.ade_enrollment import require_minimum_os
from pippin.mdm.enrollment_profile import enrollment_profile
from pippin.mdm.machine_info import MachineInfo
from pippin.pki.challenges import EnrollmentBinding
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import DEPProfile, DEPToken, Device, UserAffinity


class UnknownEnrollmentPage(NotFound):
    """The address's reference is not one Pippin made, or its profile is gone."""

    code = "unknown_enrollment_page"

    def __init__(self) -> None:
        super().__init__(
            "There is no enrollment sign-in page at this address.",
            hint="Restart setup on the device; if this keeps happening, tell your IT department.",
        )


class DeviceNotManaged(PippinError):
    """The device that opened the page is not one Apple assigned to this server."""

    code = "device_not_managed"

    def __init__(self) -> None:
        super().__init__(
            "This device is not one your organisation manages with this server, so it cannot enroll here.",
            hint="Tell your IT department the device's serial number.",
        )


class DeviceMismatch(InvalidInput):
    """The device that sent the sign-in is not the one that opened the page."""

    code = "enrollment_device_mismatch"

    def __init__(self) -> None:
        super().__init__(
            "This sign-in page was opened by another device.",
            hint="Restart setup on this device to get its own sign-in page.",
        )


@dataclass(frozen=True)
class OpenedPage:
    """A sign-in page ready to show: its state (for the hidden field) and the profile's name."""

    state: str
    profile_name: str


def page_target(box: SecretBox, reference: str) -> ProfileRevision:
    """The profile revision the page's address names, or :class:`UnknownEnrollmentPage`."""
    target = read_reference(box, reference)
    if target is None:
        raise UnknownEnrollmentPage()
    return target


def _profile(session: Session, target: ProfileRevision) -> DEPProfile:
    profile = session.get(DEPProfile, target.profile_id)
    if profile is None:
        raise UnknownEnrollmentPage()
    return profile


def _check_device(session: Session, serial_number: str) -> Device:
    """Apple assigned the device to one of this server's tokens with a profile (the sync saw it): ADE
    enrollment's rule (``mdm/ade_enrollment.py``), as the page leads to the same enrollment."""
    device = session.scalars(select(Device).where(Device.serial_number == serial_number)).one_or_none()
    if device is None or device.token_id is None or not device.can_enroll or device.assigned_profile_id is None:
        raise DeviceNotManaged()
    return device


def open_page(
    session: Session, *, box: SecretBox, reference: str, machine_info: MachineInfo, now: datetime
) -> OpenedPage:
    """A new sign-in page for the device whose verified MachineInfo is ``machine_info``.

    Raises :class:`UnknownEnrollmentPage`, :class:`DeviceNotManaged` and
    :class:`~pippin.mdm.ade_enrollment.SoftwareUpdateRequired`.
    """
    target = page_target(box, reference)
    profile = _profile(session, target)
    if profile.user_affinity != UserAffinity.with_user:
        raise UnknownEnrollmentPage()  # its devices enroll without signing in: this page is not theirs
    _check_device(session, machine_info.serial_number)
    require_minimum_os(profile, machine_info, refused_by="enrollment page")
    state = states.open_state(
        session, serial_number=machine_info.serial_number, udid=machine_info.udid, target=target, now=now
    )
    return OpenedPage(state=state, profile_name=profile.name)


def page_profile_name(session: Session, *, box: SecretBox, reference: str) -> str:
    """The profile's name, for a page shown again (a wrong password)."""
    return _profile(session, page_target(box, reference)).name


def sign_in_and_enroll(
    session_factory: SessionFactory,
    *,
    settings: Settings,
    box: SecretBox,
    generate_key: KeyGenerator,
    work: PasswordWork,
    reference: str,
    state: str,
    username: str,
    password: str,
    actor: Actor,
    now: datetime,
    machine_info: MachineInfo | None = None,
) -> bytes:
    """The signed enrollment profile for the page's device, with the user who signed in as its primary user.

    ``machine_info`` is the verified MachineInfo header sent with the sign-in, if any: it must be the device that
    opened the page, and is held to the profile's minimum OS version again (it may have been raised since the page
    opened). Commits in steps: the state is read, the password checked (the throttle's
    own steps), a wrong password counted on the page, and the state ended with the profile's challenge issued in
    one last transaction, so a profile is handed out at most once per page. Raises
    :class:`~pippin.mdm.enrollment_web_states.StateRefused`, :class:`DeviceMismatch`,
    :class:`~pippin.mdm.ade_enrollment.SoftwareUpdateRequired`, and the sign-in's errors
    (``admin/directory.check_sign_in``).
    """
    target = page_target(box, reference)
    with read_transaction(session_factory) as session:
        found = states.find_state(session, state=state, target=target, now=now)
        profile = _profile(session, target)
    if machine_info is not None:
        if (machine_info.serial_number, machine_info.udid) != (found.serial_number, found.udid):
            raise DeviceMismatch()
        require_minimum_os(profile, machine_info, refused_by="enrollment page")
    try:
        user = directory.check_sign_in(
            session_factory,
            username=username,
            password=password,
            actor=actor,
            work=work,
            secret_box=box,
            now=now,
            serial_number=found.serial_number,
        )
    except SignInFailed:
        with transaction(session_factory) as session:
            states.record_failed_attempt(session, state=found)
        raise
    with transaction(session_factory) as session:
        states.use_state(session, state=found, now=now)
        profile = _profile(session, target)
        assigned = _check_device(session, found.serial_number)
        token = session.get(DEPToken, assigned.token_id)
        return enrollment_profile(
            session,
            settings=settings,
            box=box,
            generate_key=generate_key,
            now=now,
            binding=EnrollmentBinding(
                serial_number=found.serial_number,
                udid=found.udid,
                profile_id=target.profile_id,
                profile_revision=target.revision,
                primary_user_id=user.id,
            ),
            uses=1,
            removal_disallowed=not profile.is_mdm_removable,
            organization=token.org_name if token is not None else None,
        )
