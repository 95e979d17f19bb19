"""What Apple's answers mean for a device's assignment: the columns the runner stores for each one.

Two of Apple's answers settle an assignment. ``POST /profile/devices`` answers each serial it was sent
(reference 3.7): ``SUCCESS``, ``NOT_ACCESSIBLE``, ``FAILED`` (not sent again for 24 hours, reference 8) or
``THROTTLED`` (not before ``retry_after_seconds``). ``POST /devices`` (device details, reference 3.4) tells,
after a send whose answer was lost, whether Apple holds the profile for the device: then it is assigned and is
not sent again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pippin.dep.wire import DEPDevice, DeviceDetail
from pippin.store.models import AssignmentStatus
from pippin.store.models.device import ENROLLABLE_PROFILE_STATUSES

FAILED_COOLDOWN = timedelta(hours=24)  # Apple's guidance after FAILED (reference 8)
UNANSWERED_RETRY = timedelta(minutes=15)

#: Apple's per-serial answers to an assignment; "" stands for a serial the answer left out.
ASSIGN_OUTCOMES = ("SUCCESS", "NOT_ACCESSIBLE", "FAILED", "THROTTLED")

_NOT_ACCESSIBLE = "Apple says this device is not assigned to the token's MDM server."


def assign_outcome_values(status: str, *, now: datetime, throttle: timedelta, profile_uuid: str) -> dict[str, object]:
    """The device columns for one of Apple's per-serial answers ("" when Apple's answer left the serial out).

    Every answer ends the batch's claim except a missing one: Apple may have assigned the device without saying
    so, so the claim stays and the device is looked up at Apple before it is sent again.
    """
    if status == "SUCCESS":
        # What Apple now shows for the device (reference 3.7); the next sync confirms it.
        return {
            "assignment_status": AssignmentStatus.assigned,
            "assignment_retry_at": None,
            "assignment_error": None,
            "assignment_claim": None,
            "profile_uuid": profile_uuid,
            "profile_status": "assigned",
            "profile_assign_time": now,
        }
    if status == "NOT_ACCESSIBLE":
        return not_accessible_values()
    if status == "FAILED":
        message = "Apple answered FAILED; Apple asks for 24 hours before trying this device again."
        return {
            "assignment_status": AssignmentStatus.failed,
            "assignment_retry_at": now + FAILED_COOLDOWN,
            "assignment_error": message,
            "assignment_claim": None,
        }
    if status == "THROTTLED":
        message = f"Apple answered THROTTLED; retried after {int(throttle.total_seconds())} seconds."
        return {
            "assignment_status": AssignmentStatus.throttled,
            "assignment_retry_at": now + throttle,
            "assignment_error": message,
            "assignment_claim": None,
        }
    message = "Apple's answer did not include this device; it is looked up at Apple and sent again soon."
    return {"assignment_retry_at": now + UNANSWERED_RETRY, "assignment_error": message}


def _same_uuid(left: str | None, right: str) -> bool:
    # Apple's UUIDs are 32 uppercase hex digits (reference 3); compare them as Apple does, whatever the case
    # or dashes of either copy.
    return left is not None and left.replace("-", "").upper() == right.replace("-", "").upper()


def held_record(detail: DeviceDetail | None, profile_uuid: str) -> DEPDevice | None:
    """Apple's record of the device when it shows ``profile_uuid`` assigned (or already fetched), else ``None``."""
    if detail is None or detail.response_status != "SUCCESS" or detail.device is None:
        return None
    device = detail.device
    if device.profile_status in ENROLLABLE_PROFILE_STATUSES and _same_uuid(device.profile_uuid, profile_uuid):
        return device
    return None


def held_values(device: DEPDevice, *, now: datetime, profile_uuid: str) -> dict[str, object]:
    """The device columns when Apple's record shows it holds the profile: assigned, as Apple says."""
    return {
        "assignment_status": AssignmentStatus.assigned,
        "assignment_retry_at": None,
        "assignment_error": None,
        "assignment_claim": None,
        "profile_uuid": profile_uuid,
        "profile_status": device.profile_status,
        "profile_assign_time": device.profile_assign_time or now,
    }


def not_accessible_values() -> dict[str, object]:
    """The device columns when Apple says the serial is not on the token's MDM server (reference 3.4, 3.7)."""
    return {
        "assignment_status": AssignmentStatus.not_accessible,
        "assignment_retry_at": None,
        "assignment_error": _NOT_ACCESSIBLE,
        "assignment_claim": None,
    }
