"""Reliable MDM pushes: a push is asked for in the database, then sent by whichever process claims it.

:func:`request_pushes` records that an enrollment should be woken (in the caller's transaction, so a command
queued and its push commit together, and a push never reaches APNs before the command it announces is stored).
:func:`send_due_pushes` (a periodic job, ``push/scheduled.py``) claims the due pushes in one short transaction,
sends them after commit, and writes the outcomes in another; it commits in those steps itself, which is why it
takes a session factory. What each outcome does (the 2026 updates, section 4 item 13, after Fleet):

- delivered: the push is done;
- token refused (400 BadDeviceToken / DeviceTokenNotForTopic, 410): the token is marked refused and never pushed
  again; a new TokenUpdate brings another token, which is;
- certificate refused (403, a refused TLS handshake): the certificate store records it (``CertificateRefusal``)
  and nothing is pushed until another certificate is in force; the push stays pending, its attempt not counted;
- retryable (429, 5xx, dropped connections, timeouts): tried again after an exponential, jittered wait, until the
  push's expiration or its last attempt;
- request error (a topic, expiration or payload APNs calls wrong): a bug in Pippin, logged and not repeated.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import ceil
from typing import Any, Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from pippin.admin.audit import Actor, AuditAction, Interface, record_event
from pippin.config import Settings
from pippin.errors import InvalidInput, NotFound
from pippin.push.apns import Notification, PushOutcome
from pippin.push.claims import IN_CHUNK, NOT_PENDING, PUSHES, ClaimedPush, claim_due, pending_values, settle
from pippin.push.identity import PushIdentity
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import Enrollment, EnrollmentStatus, PushDelivery, PushResult, utcnow

logger = logging.getLogger(__name__)

#: The push certificate pushes go out with, or ``None`` when none may be used (none uploaded, expired, or refused
#: by APNs since it was uploaded): the certificate store's ``identity_for_pushes`` (``push/certificate.py``).
IdentityLoader = Callable[[Session], PushIdentity | None]
#: Tells the certificate store that APNs refused the certificate with this fingerprint, and why; in the caller's
#: transaction. Afterwards the store's :data:`IdentityLoader` returns ``None`` until another certificate is in force.
CertificateRefusal = Callable[[Session, str, str], None]


#: Pushes claimed per step.
BATCH = 500
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
MAX_UDID_CHARS = 64


class PushSender(Protocol):
    """What delivery needs of the APNs client (``push/apns.py``); tests pass their own."""

    def send_all(self, identity: PushIdentity, notifications: Sequence[Notification]) -> list[PushOutcome]: ...

    def close(self) -> None: ...


@dataclass
class PushRequestReport:
    """Which enrollments got a pending push, and which cannot be pushed (no token yet, refused, not enrolled)."""

    requested: list[str] = field(default_factory=list)
    not_pushable: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)


@dataclass
class SendReport:
    """What one run of :func:`send_due_pushes` did."""

    sent: int = 0
    outcomes: dict[PushResult, int] = field(default_factory=dict)
    #: Due pushes dropped without a send: the device has no usable token any more.
    dropped: int = 0
    #: Pushes wait because no certificate may be used.
    waiting_for_certificate: bool = False

    def count(self, result: PushResult, amount: int = 1) -> None:
        if amount:
            self.outcomes[result] = self.outcomes.get(result, 0) + amount


def claim_lease(settings: Settings, batch: int = BATCH) -> timedelta:
    """How long a claim holds: longer than a batch of pushes can take, each within the APNs timeout."""
    rounds = ceil(batch / settings.apns_max_in_flight)
    return timedelta(seconds=settings.apns_timeout * rounds) + timedelta(minutes=1)


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: doubling from 30 s to an hour, each between half and
    all of it, so the pushes APNs throttled together do not come back together."""
    doublings: int = max(0, min(attempts - 1, 20))
    step = min(BACKOFF_CAP, BACKOFF_BASE * (1 << doublings))
    return step * rng.uniform(0.5, 1.0)


def _check_udids(udids: Iterable[str]) -> list[str]:
    unique = sorted(set(udids))
    for udid in unique:
        if not udid or len(udid) > MAX_UDID_CHARS or not udid.isprintable():
            raise InvalidInput(
                f"A UDID is 1 to {MAX_UDID_CHARS} printable characters.",
                hint="Give the UDID the device enrolled with (`pippin devices list` shows it).",
            )
    return unique


def _pushable(status: EnrollmentStatus, token: str | None, magic: str | None, refused: str | None) -> bool:
    return bool(status is EnrollmentStatus.enrolled and token and magic and token != refused)


def _locked_enrollments(
    session: Session, udids: Sequence[str]
) -> dict[str, tuple[EnrollmentStatus, str | None, str | None]]:
    """The enrollments of ``udids`` (status, token, PushMagic), locked in UDID order, so two requesters of one
    push never both insert its row (PostgreSQL: the second waits, then sees the first's row)."""
    found: dict[str, tuple[EnrollmentStatus, str | None, str | None]] = {}
    for start in range(0, len(udids), IN_CHUNK):
        rows = session.execute(
            select(Enrollment.udid, Enrollment.status, Enrollment.push_token, Enrollment.push_magic)
            .where(Enrollment.udid.in_(udids[start : start + IN_CHUNK]))
            .order_by(Enrollment.udid)
            .with_for_update(key_share=True)
        )
        for udid, status, token, magic in rows:
            found[udid] = (status, token, magic)
    return found


def _deliveries(session: Session, udids: Sequence[str]) -> dict[str, PushDelivery]:
    """The push rows of ``udids``, locked in key order as the push job locks them: what is decided from a
    row (is a push in flight?) must still be true when it is written, or a push written as sent meanwhile loses
    the request made for after it (PostgreSQL; SQLite serialises writing transactions)."""
    rows: dict[str, PushDelivery] = {}
    ordered = sorted(udids)
    for start in range(0, len(ordered), IN_CHUNK):
        chunk = ordered[start : start + IN_CHUNK]
        query = select(PushDelivery).where(PushDelivery.udid.in_(chunk)).order_by(PushDelivery.udid).with_for_update()
        for row in session.scalars(query):
            rows[row.udid] = row
    return rows


def request_pushes(
    session: Session,
    *,
    udids: Iterable[str],
    settings: Settings,
    now: datetime | None = None,
    actor: Actor | None = None,
) -> PushRequestReport:
    """Ask for a push to each enrollment, in the caller's transaction; the sender sends it after commit.

    A push already pending is not doubled (APNs keeps only the last one per device anyway): its expiration moves
    on. An admin's request is recorded in the audit log; Pippin's own (a queued command, the sweep) is not.
    """
    moment = now or utcnow()
    wanted = _check_udids(udids)
    enrollments = _locked_enrollments(session, wanted)
    rows = _deliveries(session, list(enrollments))
    report = PushRequestReport()
    expires_at = moment + settings.push_expiration
    for udid in wanted:
        if udid not in enrollments:
            report.not_found.append(udid)
            continue
        status, token, magic = enrollments[udid]
        row = rows.get(udid)
        if not _pushable(status, token, magic, row.refused_token if row else None):
            report.not_pushable.append(udid)
            continue
        if row is None:
            row = PushDelivery(udid=udid, next_sweep_at=moment + settings.push_silent_after)
            session.add(row)
        if row.wanted_at is None:
            for name, value in pending_values(now=moment, expires_at=expires_at).items():
                setattr(row, name, value)
        else:
            if row.expires_at is None or row.expires_at < expires_at:
                row.expires_at = expires_at
            if row.claim is not None:
                # In flight: the sender sees a request newer than its claim and pushes once more after it.
                row.wanted_at = moment
        if row.next_sweep_at is None:
            row.next_sweep_at = moment + settings.push_silent_after
        report.requested.append(udid)
    session.flush()
    if actor is not None and actor.interface is not Interface.system and report.requested:
        target = report.requested[0] if len(report.requested) == 1 else None
        detail = {"requested": len(report.requested), "not_pushable": len(report.not_pushable)}
        record_event(session, actor=actor, action=AuditAction.push_send, target=target, detail=detail, now=moment)
    return report


def request_push(
    session: Session, *, udid: str, settings: Settings, now: datetime | None = None, actor: Actor | None = None
) -> bool:
    """Ask for a push to one enrollment; ``False`` when it cannot be pushed now, :class:`NotFound` when unknown."""
    report = request_pushes(session, udids=[udid], settings=settings, now=now, actor=actor)
    if report.not_found:
        raise NotFound("No enrollment has this UDID.", hint="Check the UDID (`pippin devices list` shows it).")
    return bool(report.requested)


def _common(result: PushResult, now: datetime) -> dict[str, Any]:
    return {
        "claim": None,
        "last_push_at": now,
        "last_result": result,
        "last_status": bindparam("b_status"),
        "last_reason": bindparam("b_reason"),
        "last_apns_id": bindparam("b_apns_id"),
        "pushes": PUSHES.c.pushes + 1,
    }


def _row(push: ClaimedPush, outcome: PushOutcome, **extra: Any) -> dict[str, Any]:
    return {
        "b_udid": push.udid,
        "b_status": outcome.status,
        "b_reason": outcome.reason,
        "b_apns_id": outcome.apns_id,
        **extra,
    }


@dataclass
class _Outcomes:
    """The outcomes of one batch, grouped by the write each needs."""

    delivered: list[dict[str, Any]] = field(default_factory=list)
    token_refused: list[dict[str, Any]] = field(default_factory=list)
    certificate_refused: list[dict[str, Any]] = field(default_factory=list)
    retry: list[dict[str, Any]] = field(default_factory=list)
    given_up: list[dict[str, Any]] = field(default_factory=list)
    request_error: list[dict[str, Any]] = field(default_factory=list)
    certificate_reason: str | None = None


def _sort(
    pushes: Sequence[ClaimedPush],
    outcomes: Sequence[PushOutcome],
    *,
    now: datetime,
    settings: Settings,
    rng: random.Random,
    report: SendReport,
) -> _Outcomes:
    grouped = _Outcomes()
    for push, outcome in zip(pushes, outcomes, strict=True):
        report.sent += 1
        if outcome.result is PushResult.delivered:
            grouped.delivered.append(_row(push, outcome))
        elif outcome.result is PushResult.token_refused:
            refused_at = outcome.timestamp or now
            grouped.token_refused.append(_row(push, outcome, b_token=push.token, b_refused_at=refused_at))
        elif outcome.result is PushResult.certificate_refused:
            grouped.certificate_refused.append(_row(push, outcome))
            grouped.certificate_reason = grouped.certificate_reason or outcome.reason or "Refused"
        elif outcome.result is PushResult.retryable:
            next_at = now + backoff(push.attempts, rng)
            if push.attempts >= settings.push_max_attempts or push.expires_at is None or next_at >= push.expires_at:
                grouped.given_up.append(_row(push, outcome))
                report.count(PushResult.expired)
            else:
                grouped.retry.append(_row(push, outcome, b_next=next_at))
        else:
            grouped.request_error.append(_row(push, outcome))
        report.count(outcome.result)
    return grouped


def _write(session: Session, claim: str, grouped: _Outcomes, *, claimed_at: datetime, now: datetime) -> None:
    c = PUSHES.c
    # The batch's rows are locked first, in key order, as every other writer of these rows takes them (the ORM
    # flushes in key order): written group by group in APNs's order instead, a batch and a command's push request
    # on the same rows deadlocked on PostgreSQL.
    groups = (grouped.delivered, grouped.token_refused, grouped.certificate_refused, grouped.retry,
              grouped.given_up, grouped.request_error)  # fmt: skip
    udids = sorted({row["b_udid"] for group in groups for row in group})
    if udids:
        session.execute(select(c.udid).where(c.udid.in_(udids)).order_by(c.udid).with_for_update())
    settle(session, claim, grouped.delivered, {
        **_common(PushResult.delivered, now), **NOT_PENDING, "delivered": c.delivered + 1,
    }, where=c.wanted_at <= claimed_at)  # fmt: skip
    # Asked for again while this one was in flight (a command queued after it left): the device may have
    # checked in before the command existed, so it gets another push.
    settle(session, claim, grouped.delivered, {
        **_common(PushResult.delivered, now), "attempts": 0, "next_attempt_at": now, "delivered": c.delivered + 1,
    })  # fmt: skip
    settle(session, claim, grouped.token_refused, {
        **_common(PushResult.token_refused, now), **NOT_PENDING,
        "refused_token": bindparam("b_token"), "token_refused_at": bindparam("b_refused_at"),
        "token_refused_reason": bindparam("b_reason"), "token_refusals": c.token_refusals + 1,
        "next_sweep_at": None,
    })  # fmt: skip
    # Not the push's fault: its attempt is given back, and it is due as soon as a certificate may be used.
    settle(session, claim, grouped.certificate_refused, {
        **_common(PushResult.certificate_refused, now),
        "attempts": c.attempts - 1, "next_attempt_at": now, "certificate_refusals": c.certificate_refusals + 1,
    })  # fmt: skip
    settle(session, claim, grouped.retry, {
        **_common(PushResult.retryable, now),
        "next_attempt_at": bindparam("b_next"), "retryable_failures": c.retryable_failures + 1,
    })  # fmt: skip
    settle(session, claim, grouped.given_up, {
        **_common(PushResult.expired, now), **NOT_PENDING,
        "retryable_failures": c.retryable_failures + 1, "expired": c.expired + 1,
    })  # fmt: skip
    settle(session, claim, grouped.request_error, {
        **_common(PushResult.request_error, now), **NOT_PENDING, "request_errors": c.request_errors + 1,
    })  # fmt: skip


def _drop_unsendable(
    session: Session,
    claim: str,
    pushes: Sequence[ClaimedPush],
    *,
    now: datetime,
    settings: Settings,
    report: SendReport,
) -> list[ClaimedPush]:
    """In the claim's transaction: end the pushes that cannot or may no longer be sent; returns the rest."""
    sendable: list[ClaimedPush] = []
    dropped: list[dict[str, Any]] = []
    expired: list[dict[str, Any]] = []
    for push in pushes:
        if not push.pushable:
            dropped.append({"b_udid": push.udid})
        elif push.expires_at is None or push.expires_at <= now or push.attempts > settings.push_max_attempts:
            expired.append({"b_udid": push.udid})
        else:
            sendable.append(push)
    settle(session, claim, dropped, NOT_PENDING)
    settle(session, claim, expired, {**NOT_PENDING, "last_result": PushResult.expired, "expired": PUSHES.c.expired + 1})
    report.dropped += len(dropped)
    report.count(PushResult.expired, len(expired))
    return sendable


def send_due_pushes(
    session_factory: SessionFactory,
    *,
    sender: PushSender,
    load_identity: IdentityLoader,
    record_certificate_refusal: CertificateRefusal,
    settings: Settings,
    clock: Callable[[], datetime] = utcnow,
    rng: random.Random | None = None,
    batch: int = BATCH,
    should_stop: Callable[[], bool] | None = None,
) -> SendReport:
    """Send every push due now, a batch at a time: claim (commit), send, write the outcomes (commit).

    Commits in those steps itself, and never holds a transaction while APNs answers. Two senders (threads or
    processes) never send the same push: each batch is claimed by one of them (``push/claims.py``).
    """
    random_source = rng or random.Random()
    report = SendReport()
    while should_stop is None or not should_stop():
        now = clock()
        with transaction(session_factory) as session:
            identity = load_identity(session)
            if identity is None or identity.not_after <= now:
                report.waiting_for_certificate = True
                return report
            claim, claimed = claim_due(session, now=now, lease=claim_lease(settings, batch), limit=batch)
            pushes = _drop_unsendable(session, claim, claimed, now=now, settings=settings, report=report)
        if not claimed:
            return report
        if pushes:
            notifications = [Notification(p.token or "", p.push_magic or "", p.expires_at or now) for p in pushes]
            outcomes = sender.send_all(identity, notifications)
            answered = clock()
            with transaction(session_factory) as session:
                grouped = _sort(pushes, outcomes, now=answered, settings=settings, rng=random_source, report=report)
                _write(session, claim, grouped, claimed_at=now, now=answered)
                if grouped.certificate_reason is not None:
                    record_certificate_refusal(session, identity.fingerprint, grouped.certificate_reason)
            if grouped.certificate_reason is not None:
                fields = {"topic": identity.topic, "reason": grouped.certificate_reason}
                logger.error("APNs refused the push certificate; pushes wait for a new one", extra={"fields": fields})
                report.waiting_for_certificate = True
                return report
        if len(claimed) < batch:
            return report
    return report
