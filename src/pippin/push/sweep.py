"""The sweep: an enrolled device silent for ``push_silent_after`` (a day by default) is pushed again, once a period.

APNs keeps only the last push per device and a 200 is no proof of delivery (reference section 5): a device
offline, or a push lost to a race with APNs's registration, would otherwise wait until someone else pushes it.
Apple suggests pushing silent devices periodically; Fleet's daily re-push query read every queued row each time
(the 2026 updates, section 2 item 1). Here each watched enrollment has its next look on its row
(``next_sweep_at``, indexed): a look at a device seen meanwhile only moves that time on, so each device is looked
at about once a period and a pass reads only the rows whose look is due, however large the fleet.

A device starts being watched when it is first pushed or given a token (:func:`watch_enrollment`, which the
TokenUpdate check-in calls); it stops when it is no longer enrolled or its token was refused for good.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.push.claims import pending_values
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import Enrollment, EnrollmentStatus, PushDelivery, utcnow

#: Rows looked at per transaction.
SWEEP_BATCH = 1000


@dataclass
class SweepReport:
    looked_at: int = 0
    pushed: int = 0
    unwatched: int = 0


def watch_enrollment(session: Session, *, udid: str, settings: Settings, now: datetime | None = None) -> None:
    """Start watching an enrollment for silence (in the caller's transaction), e.g. when its token arrives.

    The enrollment row is locked first, so two check-ins of one device never both insert its push row.
    """
    moment = now or utcnow()
    session.execute(select(Enrollment.udid).where(Enrollment.udid == udid).with_for_update(key_share=True))
    row = session.get(PushDelivery, udid, with_for_update=True)
    if row is None:
        session.add(PushDelivery(udid=udid, next_sweep_at=moment + settings.push_silent_after))
    elif row.next_sweep_at is None:
        row.next_sweep_at = moment + settings.push_silent_after
    session.flush()


def sweep_silent_devices(
    session_factory: SessionFactory,
    *,
    settings: Settings,
    clock: Callable[[], datetime] = utcnow,
    batch: int = SWEEP_BATCH,
    should_stop: Callable[[], bool] | None = None,
) -> SweepReport:
    """Look at every watched enrollment whose look is due, a batch per transaction (commits itself, in steps).

    Silent ones get a push (unless one is pending); ones seen meanwhile are looked at again a period after they
    were last seen. Rows another sweeper is looking at are skipped (``SKIP LOCKED`` on PostgreSQL).
    """
    report = SweepReport()
    silent_after = settings.push_silent_after
    while should_stop is None or not should_stop():
        now = clock()
        with transaction(session_factory) as session:
            rows = session.execute(
                select(PushDelivery, Enrollment.status, Enrollment.last_seen_at, Enrollment.push_token)
                .join(Enrollment, Enrollment.udid == PushDelivery.udid)
                .where(PushDelivery.next_sweep_at.is_not(None), PushDelivery.next_sweep_at <= now)
                .order_by(PushDelivery.next_sweep_at)
                .limit(batch)
                .with_for_update(skip_locked=True, of=PushDelivery)
            ).all()
            for row, status, last_seen_at, token in rows:
                report.looked_at += 1
                if status is not EnrollmentStatus.enrolled or not token or token == row.refused_token:
                    row.next_sweep_at = None
                    report.unwatched += 1
                elif last_seen_at is not None and last_seen_at > now - silent_after:
                    row.next_sweep_at = last_seen_at + silent_after
                else:
                    if row.wanted_at is None:
                        for name, value in pending_values(now=now, expires_at=now + settings.push_expiration).items():
                            setattr(row, name, value)
                        report.pushed += 1
                    row.next_sweep_at = now + silent_after
        if len(rows) < batch:
            break
    return report
