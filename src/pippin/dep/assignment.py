"""Queueing enrollment profiles for devices: which profile and revision each device should have at Apple.

Every device carries its assignment: the profile and revision it should have, a status (``pending``,
``assigned``, ``not_accessible``, ``failed``, ``throttled``), when it may be sent again, and Apple's last word.
This module decides what is queued (an admin's assignment, a token's default profile after a sync, a profile's
new revision); ``dep/assignment_runner.py`` sends what is due to Apple and records each serial's outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.dep.profile_schemas import AssignmentQueued
from pippin.dep.profiles import get_profile
from pippin.dep.token import get_token
from pippin.errors import InvalidInput, NotFound
from pippin.store.models import (
    AppleStatus,
    AssignmentStatus,
    DEPProfile,
    Device,
    TokenDefaultProfile,
    utcnow,
)
from pippin.text import check_text

logger = logging.getLogger(__name__)

IN_CHUNK = 900  # serials per IN (...) list, below SQLite's parameter limit on every version
WAITING = (AssignmentStatus.pending, AssignmentStatus.failed, AssignmentStatus.throttled)


def active_device() -> ColumnElement[bool]:
    """Devices still assigned to one of Pippin's MDM servers at Apple."""
    return and_(Device.token_id.is_not(None), Device.apple_status != AppleStatus.removed)


def _without_profile() -> ColumnElement[bool]:
    """Apple shows no profile, and Pippin has none queued or given (reference 4: empty, "" or removed)."""
    return and_(
        Device.assigned_profile_id.is_(None),
        or_(Device.profile_status.is_(None), Device.profile_status.in_(("", "empty", "removed"))),
    )


def _cooling(now: datetime) -> ColumnElement[bool]:
    return and_(
        Device.assignment_status.in_((AssignmentStatus.failed, AssignmentStatus.throttled)),
        Device.assignment_retry_at > now,
    )


def _queue(session: Session, where: ColumnElement[bool], profile: DEPProfile, now: datetime) -> tuple[int, int]:
    """Point the devices matching ``where`` at the profile's current revision; returns (queued, cooling)."""
    # coalesce: NOT over a NULL comparison is NULL, which would leave out exactly the devices with no profile.
    current = and_(
        func.coalesce(Device.assigned_profile_id, 0) == profile.id,
        func.coalesce(Device.assigned_revision, 0) == profile.revision,
        func.coalesce(Device.assignment_status, "").in_((*WAITING, AssignmentStatus.assigned)),
    )
    base = update(Device).where(where, ~current).execution_options(synchronize_session=False)
    # Apple's cooldown is per device, whatever the profile: those keep their status and retry time.
    cooling = session.execute(
        base.where(_cooling(now)).values(
            assigned_profile_id=profile.id, assigned_revision=profile.revision, assignment_updated_at=now
        )
    )
    fresh = session.execute(
        base.values(
            assigned_profile_id=profile.id,
            assigned_revision=profile.revision,
            assignment_status=AssignmentStatus.pending,
            assignment_retry_at=None,
            assignment_error=None,
            assignment_updated_at=now,
            # The new revision was never sent: nothing to look up at Apple before sending it (a runner still
            # sending the old one finds its claim gone and leaves the device alone).
            assignment_claim=None,
        )
    )
    cooled = int(getattr(cooling, "rowcount", 0) or 0)
    return cooled + int(getattr(fresh, "rowcount", 0) or 0), cooled


def queue_assignment(
    session: Session,
    *,
    profile_name: str,
    serials: Sequence[str] = (),
    all_unassigned: bool = False,
    token_name: str | None = None,
    actor: Actor,
    now: datetime | None = None,
) -> AssignmentQueued:
    """Queue devices for ``profile_name``: the serials given, every device without a profile, or a token's devices.

    Nothing is sent here: every interface starts a send of due assignments after it (``run_due_assignments``).
    Unknown or removed serials refuse the whole request. A device already given this revision is left alone.
    """
    moment = now or utcnow()
    profile = get_profile(session, name=profile_name)
    if not serials and not all_unassigned and token_name is None:
        raise InvalidInput("Name the devices to assign.", hint="Give serial numbers, --all-unassigned or --token NAME.")
    if serials and (all_unassigned or token_name is not None):
        raise InvalidInput("Give serial numbers, or --all-unassigned / --token, not both.")
    if all_unassigned and token_name is not None:
        # Each names a set of devices of its own; reading both as "the token's devices without one" is a guess.
        raise InvalidInput(
            "Give --all-unassigned (every device without a profile) or --token NAME (every device of the token), "
            "not both.",
            hint="Send one request for each set of devices.",
        )
    conditions: list[ColumnElement[bool]] = [active_device()]
    if token_name is not None:
        conditions.append(Device.token_id == get_token(session, name=token_name).id)
    if all_unassigned:
        conditions.append(_without_profile())
    total = queued = cooling = 0
    if serials:
        for index, serial in enumerate(serials, start=1):
            check_text(serial, field=f"Serial number {index}")
        wanted = list(dict.fromkeys(serials))
        found: set[str] = set()
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            found.update(
                session.scalars(select(Device.serial_number).where(active_device(), Device.serial_number.in_(chunk)))
            )
        missing = [serial for serial in wanted if serial not in found]
        if missing:
            shown = ", ".join(repr(s[:64]) for s in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise NotFound(
                f"{len(missing)} serial number(s) are not devices Pippin can assign: {shown}.",
                hint="Serial numbers are case-sensitive; a device must have been synced from Apple and not removed "
                "(`pippin devices list`, `pippin dep sync NAME`). Nothing was queued.",
            )
        for start in range(0, len(wanted), IN_CHUNK):
            done, cooled = _queue(session, Device.serial_number.in_(wanted[start : start + IN_CHUNK]), profile, moment)
            queued, cooling = queued + done, cooling + cooled
        total = len(wanted)
    else:
        where = and_(*conditions)
        total = session.scalar(select(func.count()).select_from(Device).where(where)) or 0
        queued, cooling = _queue(session, where, profile, moment)
    result = AssignmentQueued(
        profile=profile.name, revision=profile.revision, queued=queued, unchanged=total - queued, cooling_down=cooling
    )
    audit.record_event(
        session,
        actor=actor,
        action=AuditAction.profile_assign,
        target=profile.name,
        detail={"queued": result.queued, "unchanged": result.unchanged, "revision": result.revision},
        now=moment,
    )
    return result


def assign_default_profiles(session: Session, *, token_id: int, now: datetime | None = None) -> int:
    """Queue the token's default profile for its devices that have none at Apple or in Pippin.

    That includes devices whose profile Apple dropped (released and re-assigned, moved from another MDM server):
    the sync's page writer clears Pippin's assignment of those as it writes their record (``dep/devices.py``),
    so they arrive here without a profile. Also picks up devices Apple once called not accessible that a later
    sync saw again. Returns how many were queued; called by the sync after each successful run, and cheap when
    there is nothing to do: it reads only the devices written since its last look.
    """
    moment = now or utcnow()
    default = session.get(TokenDefaultProfile, token_id)
    if default is None:
        return 0
    profile = session.get_one(DEPProfile, default.profile_id)
    mine = and_(active_device(), Device.token_id == token_id)
    if default.covered_until is not None:
        # Only what syncs wrote since the last look; the whole token is looked at once, after set-default.
        mine = and_(mine, Device.last_synced_at >= default.covered_until)
    default.covered_until = moment
    needs_profile = or_(
        _without_profile(),
        and_(
            Device.assignment_status == AssignmentStatus.not_accessible,
            Device.last_synced_at > Device.assignment_updated_at,
        ),
    )
    queued, _ = _queue(session, and_(mine, needs_profile), profile, moment)
    if queued:
        logger.info("queued the default profile", extra={"fields": {"profile": profile.name, "devices": queued}})
    return queued
