"""The single-use ``state`` of a device's enrollment sign-in page, bound to the device instead of a cookie.

Setup Assistant opens the profile's ``configuration_web_url`` in a web view that is known to lose cookies
(reference ``apple-mdm-updates-2026.md`` section 4 item 18), so the page cannot keep what the device's signed
MachineInfo said in a session. Instead, opening the page makes a random state, kept here as its SHA-256 with
the device's serial number and UDID and the profile revision of the page's address, and the page carries the
clear state in a hidden field. A sign-in is taken only with a state that is live for the same address; the
first good sign-in ends it (a conditional update, so two racing sign-ins cannot both take it), as do
:data:`MAX_FAILED_ATTEMPTS` wrong passwords and :data:`STATE_LIFETIME`. Whoever holds a state can sign in for
that device only, once, and never make it any other device.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from pippin.dep.enrollment_reference import ProfileRevision
from pippin.errors import InvalidInput
from pippin.store.models import EnrollmentWebState

#: Long enough to find a password and type it on a phone, short enough that a state left behind dies soon.
STATE_LIFETIME = timedelta(minutes=30)
#: Wrong passwords one page may take; then setup starts again (the throttle bounds guessing across pages).
MAX_FAILED_ATTEMPTS = 10
#: The clear state's length (``secrets.token_urlsafe(32)``); anything else is refused before any lookup.
STATE_CHARS = 43
#: Expired states deleted per new page, so the table never grows without bound and no sweep runs long.
_SWEEP_BATCH = 100


class StateRefused(InvalidInput):
    """The page's state is unknown, used, expired or for another address: setup must start again."""

    code = "enrollment_state_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"This sign-in page has {reason}.",
            hint="Go back to the start of setup on the device (or restart it) to get a new sign-in page.",
        )
        self.reason = reason


@dataclass(frozen=True)
class WebState:
    """A live state and what it was bound to when the page was opened."""

    id: int
    serial_number: str
    udid: str
    target: ProfileRevision


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode("ascii")).hexdigest()


def open_state(session: Session, *, serial_number: str, udid: str, target: ProfileRevision, now: datetime) -> str:
    """A new state for the device with ``serial_number`` and ``udid`` on the page of ``target``; returns it clear."""
    state = secrets.token_urlsafe(32)
    session.add(
        EnrollmentWebState(
            state_sha256=_digest(state),
            serial_number=serial_number,
            udid=udid,
            profile_id=target.profile_id,
            profile_revision=target.revision,
            failed_attempts=0,
            created_at=now,
            expires_at=now + STATE_LIFETIME,
        )
    )
    stale = (
        select(EnrollmentWebState.id)
        .where(EnrollmentWebState.expires_at <= now)
        .limit(_SWEEP_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.execute(
        delete(EnrollmentWebState).where(EnrollmentWebState.id.in_(stale)).execution_options(synchronize_session=False)
    )
    session.flush()
    return state


def _well_formed(state: str) -> bool:
    return len(state) == STATE_CHARS and state.isascii() and all(c.isalnum() or c in "-_" for c in state)


def find_state(session: Session, *, state: str, target: ProfileRevision, now: datetime) -> WebState:
    """The live state ``state`` for the page of ``target``, or :class:`StateRefused` saying why not."""
    if not _well_formed(state):
        raise StateRefused("no valid session")
    digest = _digest(state)
    row = session.scalars(select(EnrollmentWebState).where(EnrollmentWebState.state_sha256 == digest)).one_or_none()
    if row is None or not hmac.compare_digest(row.state_sha256, digest):
        raise StateRefused("no valid session")
    if (row.profile_id, row.profile_revision) != (target.profile_id, target.revision):
        raise StateRefused("no valid session")
    if row.used_at is not None:
        raise StateRefused("been used already")
    if row.failed_attempts >= MAX_FAILED_ATTEMPTS:
        raise StateRefused("had too many wrong passwords")
    if row.expires_at <= now:
        raise StateRefused("expired")
    return WebState(
        id=row.id,
        serial_number=row.serial_number,
        udid=row.udid,
        target=ProfileRevision(profile_id=row.profile_id, revision=row.profile_revision),
    )


def record_failed_attempt(session: Session, *, state: WebState) -> None:
    """Count a wrong password on the page of ``state``; at :data:`MAX_FAILED_ATTEMPTS` the page ends."""
    session.execute(
        update(EnrollmentWebState)
        .where(EnrollmentWebState.id == state.id)
        .values(failed_attempts=EnrollmentWebState.failed_attempts + 1)
        .execution_options(synchronize_session=False)
    )


def use_state(session: Session, *, state: WebState, now: datetime) -> None:
    """End ``state`` for a good sign-in, in the caller's transaction; :class:`StateRefused` when another request
    used it, or it ended, since it was found (only one of two racing sign-ins gets the profile)."""
    taken = session.execute(
        update(EnrollmentWebState)
        .where(
            EnrollmentWebState.id == state.id,
            EnrollmentWebState.used_at.is_(None),
            EnrollmentWebState.expires_at > now,
            EnrollmentWebState.failed_attempts < MAX_FAILED_ATTEMPTS,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        raise StateRefused("been used already")
