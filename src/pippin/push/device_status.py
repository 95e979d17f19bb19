"""An enrollment's push state as admins see it: every push and outcome counted, per device."""

from __future__ import annotations

from sqlalchemy.orm import Session

from pippin.errors import NotFound
from pippin.push.schemas import PushCountsRead, PushStatusRead, TokenState
from pippin.store.models import Enrollment, PushDelivery


def get_device_push_status(session: Session, *, udid: str) -> PushStatusRead:
    """The push state of the enrollment ``udid``; :class:`NotFound` when there is none."""
    enrollment = session.get(Enrollment, udid[:64]) if udid else None
    if enrollment is None:
        raise NotFound("No enrollment has this UDID.", hint="Check the UDID (`pippin devices list` shows it).")
    row = session.get(PushDelivery, udid)
    refused = row is not None and row.refused_token is not None and row.refused_token == enrollment.push_token
    state = TokenState.missing if not enrollment.push_token else TokenState.refused if refused else TokenState.valid
    if row is None:
        return PushStatusRead(udid=udid, token_state=state, counts=PushCountsRead())
    return PushStatusRead(
        udid=udid,
        token_state=state,
        token_refused_at=row.token_refused_at if refused else None,
        token_refused_reason=row.token_refused_reason if refused else None,
        pending=row.wanted_at is not None,
        wanted_at=row.wanted_at,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        expires_at=row.expires_at,
        last_push_at=row.last_push_at,
        last_result=row.last_result,
        last_status=row.last_status,
        last_reason=row.last_reason,
        last_apns_id=row.last_apns_id,
        next_sweep_at=row.next_sweep_at,
        counts=PushCountsRead(
            pushes=row.pushes,
            delivered=row.delivered,
            token_refused=row.token_refusals,
            certificate_refused=row.certificate_refusals,
            retryable=row.retryable_failures,
            request_error=row.request_errors,
            expired=row.expired,
        ),
    )
