"""The state admins see for a device, derived in one place from Apple's side and the enrollment side.

Two owners write a device's state: the sync writes Apple's side (``devices.apple_status``, Apple's profile), the
device half writes the enrollment (``enrollments``). Neither overwrites the other; the label comes from both,
here, after Intune's "All corporate-owned devices" (DESIGN.md, "Device states"). :func:`derive_state` and
:func:`state_expression` are the same rules, in Python and in SQL (for filtering, sorting and counting); a test
checks they agree for every combination on both databases.

In order of precedence:

- ``pending_reset``: enrolled, still assigned at Apple, with another profile or revision than Pippin now assigns
  (it must be erased to take the new one);
- ``enrolled``: enrolled (whether or not Apple still assigns it: it is managed until it checks out);
- ``removed``: no longer assigned to this MDM server at Apple;
- ``failed`` / ``unenrolled``: what the enrollment records;
- ``not_contacted``: assigned at Apple and never enrolled (the seed's "Ej ansluten"); a device that has
  authenticated but not yet sent its push token (``enrolling``) is still not contacted: it is not managed yet.

A device enrolled through a manual enrollment link has no DEP record: its state is the same rules with no Apple
side (:func:`enrollment_only_state_expression` in SQL).
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ColumnElement, and_, case, func, or_

from pippin.store.models import AppleStatus, Device, Enrollment, EnrollmentStatus
from pippin.store.models.device import ENROLLABLE_PROFILE_STATUSES


class DeviceState(StrEnum):
    """The derived state; values are the API's strings."""

    not_contacted = "not_contacted"
    enrolled = "enrolled"
    pending_reset = "pending_reset"
    unenrolled = "unenrolled"
    failed = "failed"
    removed = "removed"


#: How the CLI and the console show each state.
STATE_LABELS: dict[DeviceState, str] = {
    DeviceState.not_contacted: "Not contacted",
    DeviceState.enrolled: "Enrolled",
    DeviceState.pending_reset: "Pending reset",
    DeviceState.unenrolled: "Unenrolled",
    DeviceState.failed: "Failed",
    DeviceState.removed: "Removed",
}


def derive_state(
    *,
    apple_status: AppleStatus | str | None,
    assigned_profile_id: int | None,
    assigned_revision: int | None,
    enrollment_status: EnrollmentStatus | str | None,
    enrolled_profile_id: int | None,
    enrolled_revision: int | None,
) -> DeviceState:
    """The state of one device; ``apple_status`` is None for a device with no DEP record (a manual enrollment)."""
    if enrollment_status == EnrollmentStatus.enrolled:
        if (
            apple_status == AppleStatus.assigned
            and assigned_profile_id is not None
            and (
                (enrolled_profile_id or 0) != assigned_profile_id
                or (enrolled_revision or 0) != (assigned_revision or 0)
            )
        ):
            return DeviceState.pending_reset
        return DeviceState.enrolled
    if apple_status == AppleStatus.removed:
        return DeviceState.removed
    if enrollment_status == EnrollmentStatus.failed:
        return DeviceState.failed
    if enrollment_status == EnrollmentStatus.unenrolled:
        return DeviceState.unenrolled
    return DeviceState.not_contacted


def state_expression() -> ColumnElement[str]:
    """:func:`derive_state` in SQL, over ``devices`` outer-joined to ``enrollments`` on ``device_id``."""
    enrolled = Enrollment.status == EnrollmentStatus.enrolled
    other_profile = or_(
        func.coalesce(Enrollment.profile_id, 0) != Device.assigned_profile_id,
        func.coalesce(Enrollment.profile_revision, 0) != func.coalesce(Device.assigned_revision, 0),
    )
    return case(
        (
            and_(
                enrolled,
                Device.apple_status == AppleStatus.assigned,
                Device.assigned_profile_id.is_not(None),
                other_profile,
            ),
            DeviceState.pending_reset.value,
        ),
        (enrolled, DeviceState.enrolled.value),
        (Device.apple_status == AppleStatus.removed, DeviceState.removed.value),
        (Enrollment.status == EnrollmentStatus.failed, DeviceState.failed.value),
        (Enrollment.status == EnrollmentStatus.unenrolled, DeviceState.unenrolled.value),
        else_=DeviceState.not_contacted.value,
    )


def enrollment_only_state_expression() -> ColumnElement[str]:
    """:func:`derive_state` in SQL for an enrollment with no DEP record (``apple_status`` None), over
    ``enrollments`` alone."""
    return case(
        (Enrollment.status == EnrollmentStatus.enrolled, DeviceState.enrolled.value),
        (Enrollment.status == EnrollmentStatus.failed, DeviceState.failed.value),
        (Enrollment.status == EnrollmentStatus.unenrolled, DeviceState.unenrolled.value),
        else_=DeviceState.not_contacted.value,
    )


def cannot_enroll(
    *,
    apple_status: AppleStatus | str | None,
    profile_status: str | None,
    enrollment_status: EnrollmentStatus | str | None,
) -> bool:
    """Assigned at Apple, not enrolled, and Apple holds no profile: switched on, the device would not enroll."""
    return (
        apple_status == AppleStatus.assigned
        and profile_status not in ENROLLABLE_PROFILE_STATUSES
        and enrollment_status != EnrollmentStatus.enrolled
    )


def cannot_enroll_expression() -> ColumnElement[bool]:
    """:func:`cannot_enroll` in SQL. Over ``devices`` outer-joined to ``enrollments``, like :func:`state_expression`."""
    return and_(
        Device.apple_status == AppleStatus.assigned,
        func.coalesce(Device.profile_status, "").not_in(ENROLLABLE_PROFILE_STATUSES),
        or_(Enrollment.status.is_(None), Enrollment.status != EnrollmentStatus.enrolled),
    )
