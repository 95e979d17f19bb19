"""Reliable webhook delivery: events recorded in the database are posted by whichever process claims them.

:func:`deliver_due_events` (a periodic job, ``mdm/webhook_jobs.py``) claims the due events in one short
transaction, posts them after the commit, and writes the outcomes in another; it commits in those steps itself,
which is why it takes a session factory. Delivery is at least once: an event is marked delivered only after the
receiver answered 2xx, so a process dying between the POST and that write posts it again once its lease ends, with
the same ``event_id`` (receivers deduplicate by it). What each answer does:

- 2xx: delivered;
- unreachable (refused, reset, timeout), 429 or 503: the receiver is away or asks to wait; the event is tried again
  after an exponential, jittered wait (or the receiver's ``Retry-After``), and the rest of the batch waits a short
  pause without counting an attempt;
- any other status (a 5xx, a 404 of a receiver being redeployed, a 401 of a changed password): that event is tried
  again after its wait, the others go on;
- an event not accepted by ``PIPPIN_WEBHOOK_MAX_AGE`` is given up: logged with its ``event_id`` and counted.

:func:`prune_finished_events` deletes delivered and given-up events after ``PIPPIN_WEBHOOK_KEEP_FINISHED``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.mdm.webhook_claims import EVENTS, ClaimedEvent, claim_due, settle
from pippin.mdm.webhook_poster import HTTPWebhookPoster, PostResult, WebhookPoster
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import WebhookEvent, WebhookEventStatus, utcnow

logger = logging.getLogger(__name__)

#: Events claimed per step: posted one after the other, over one connection.
BATCH = 50
BACKOFF_BASE = timedelta(seconds=10)
BACKOFF_CAP = timedelta(hours=1)
#: Finished events deleted per transaction when pruning.
PRUNE_BATCH = 1000

#: Opens the client a delivery run posts with (one per run, closed at its end).
PosterFactory = Callable[[], WebhookPoster]


@dataclass
class DeliveryReport:
    """What one run of :func:`deliver_due_events` did."""

    delivered: int = 0
    retried: int = 0
    given_up: int = 0
    #: Claimed but not posted, because the receiver was away: back in the queue with their attempt given back.
    deferred: int = 0
    #: The ``event_id`` of every event delivered, in the order posted.
    delivered_ids: list[str] = field(default_factory=list)


def claim_lease(settings: Settings, batch: int = BATCH) -> timedelta:
    """How long a claim holds: longer than a batch of POSTs can take, each within the webhook timeout."""
    return timedelta(seconds=settings.webhook_timeout * batch) + timedelta(minutes=1)


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: doubling from 10 s to an hour, each between half and all
    of it, so the events that failed together do not come back together."""
    doublings: int = max(0, min(attempts - 1, 20))
    step = min(BACKOFF_CAP, BACKOFF_BASE * (1 << doublings))
    return step * rng.uniform(0.5, 1.0)


def open_http_poster(settings: Settings) -> PosterFactory:
    """Posters to ``PIPPIN_WEBHOOK_URL``, signing with ``PIPPIN_WEBHOOK_SECRET`` when it is set."""
    url = settings.webhook_url
    if url is None:
        raise ValueError("no webhook URL is configured")
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret is not None else None
    return lambda: HTTPWebhookPoster(url, timeout=settings.webhook_timeout, secret=secret)


@dataclass
class _Outcomes:
    delivered: list[dict[str, Any]] = field(default_factory=list)
    retry: list[dict[str, Any]] = field(default_factory=list)
    given_up: list[dict[str, Any]] = field(default_factory=list)
    #: Past the maximum age when claimed: given up without a POST, the last attempt's answer kept.
    expired: list[dict[str, Any]] = field(default_factory=list)
    deferred: list[dict[str, Any]] = field(default_factory=list)


def _given_up(event: ClaimedEvent, outcomes: _Outcomes, report: DeliveryReport, result: PostResult | None) -> None:
    if result is None:
        outcomes.expired.append({"b_id": event.id})
    else:
        outcomes.given_up.append({"b_id": event.id, "b_status": result.status, "b_error": result.error})
    report.given_up += 1
    fields = {
        "event_id": event.event_id,
        "topic": event.topic,
        "udid": event.udid,
        "attempts": event.attempts,
        "last_error": result.error if result else "not posted",
    }
    logger.warning("webhook event given up: not accepted within PIPPIN_WEBHOOK_MAX_AGE", extra={"fields": fields})


def _post_batch(
    events: list[ClaimedEvent],
    *,
    poster: WebhookPoster,
    box: SecretBox,
    settings: Settings,
    clock: Callable[[], datetime],
    rng: random.Random,
    deadline: datetime,
    should_stop: Callable[[], bool] | None,
    report: DeliveryReport,
) -> _Outcomes:
    """Post ``events`` in order; what to write for each. Stops posting when the receiver is away, the lease is
    about to end, or the runner stops: the rest is deferred."""
    outcomes = _Outcomes()
    pause: datetime | None = None
    for event in events:
        now = clock()
        if pause is None and (now >= deadline or (should_stop is not None and should_stop())):
            pause = now
        if pause is not None:
            outcomes.deferred.append({"b_id": event.id, "b_next": pause})
            report.deferred += 1
            continue
        result = poster.post(box.decrypt(event.body_encrypted))
        answered = clock()
        if result.delivered:
            outcomes.delivered.append({"b_id": event.id, "b_status": result.status})
            report.delivered += 1
            report.delivered_ids.append(event.event_id)
            continue
        wait = max(backoff(event.attempts, rng), result.retry_after or timedelta(0))
        if answered + wait >= event.created_at + settings.webhook_max_age:
            _given_up(event, outcomes, report, result)
        else:
            outcomes.retry.append(
                {"b_id": event.id, "b_next": answered + wait, "b_status": result.status, "b_error": result.error}
            )
            report.retried += 1
        if result.receiver_waits:
            pause = answered + max(backoff(1, rng), result.retry_after or timedelta(0))
    return outcomes


def _write(session: Session, claim: str, outcomes: _Outcomes, *, now: datetime) -> None:
    c = EVENTS.c
    settle(session, claim, outcomes.delivered, {
        "status": WebhookEventStatus.delivered, "claim": None, "next_attempt_at": None, "finished_at": now,
        "last_status": bindparam("b_status"), "last_error": None,
    })  # fmt: skip
    settle(session, claim, outcomes.retry, {
        "claim": None, "next_attempt_at": bindparam("b_next"),
        "last_status": bindparam("b_status"), "last_error": bindparam("b_error"),
    })  # fmt: skip
    settle(session, claim, outcomes.given_up, {
        "status": WebhookEventStatus.given_up, "claim": None, "next_attempt_at": None, "finished_at": now,
        "last_status": bindparam("b_status"), "last_error": bindparam("b_error"),
    })  # fmt: skip
    settle(session, claim, outcomes.expired, {
        "status": WebhookEventStatus.given_up, "claim": None, "next_attempt_at": None, "finished_at": now,
        "attempts": c.attempts - 1,
    })  # fmt: skip
    # Not posted: the attempt counted at the claim is given back.
    settle(session, claim, outcomes.deferred, {
        "claim": None, "next_attempt_at": bindparam("b_next"), "attempts": c.attempts - 1,
    })  # fmt: skip


def deliver_due_events(
    session_factory: SessionFactory,
    *,
    settings: Settings,
    box: SecretBox,
    open_poster: PosterFactory | None = None,
    clock: Callable[[], datetime] = utcnow,
    rng: random.Random | None = None,
    batch: int = BATCH,
    should_stop: Callable[[], bool] | None = None,
) -> DeliveryReport:
    """Post every event due now, a batch at a time: claim (commit), post, write the outcomes (commit).

    Never holds a transaction while the receiver answers. Two deliverers (threads or processes) never post the
    same event at once: each event is claimed by one of them (``mdm/webhook_claims.py``).
    """
    random_source = rng or random.Random()
    make_poster = open_poster or open_http_poster(settings)
    lease = claim_lease(settings, batch)
    report = DeliveryReport()
    poster: WebhookPoster | None = None
    try:
        while should_stop is None or not should_stop():
            finished_before = report.delivered + report.given_up
            now = clock()
            with transaction(session_factory) as session:
                claim, claimed = claim_due(session, now=now, lease=lease, limit=batch)
                expired = _Outcomes()
                fresh = []
                for event in claimed:
                    if now >= event.created_at + settings.webhook_max_age:
                        _given_up(event, expired, report, None)
                    else:
                        fresh.append(event)
                _write(session, claim, expired, now=now)
            if not claimed:
                break
            if fresh:
                poster = poster or make_poster()
                deadline = now + lease - timedelta(seconds=settings.webhook_timeout)
                outcomes = _post_batch(
                    fresh, poster=poster, box=box, settings=settings, clock=clock, rng=random_source,
                    deadline=deadline, should_stop=should_stop, report=report,
                )  # fmt: skip
                with transaction(session_factory) as session:
                    _write(session, claim, outcomes, now=clock())
                if outcomes.deferred:
                    break
            # A claim takes each device's oldest pending event; one finished lets the device's next one go.
            if len(claimed) < batch and report.delivered + report.given_up == finished_before:
                break
    finally:
        if poster is not None:
            poster.close()
    if report.delivered or report.retried or report.given_up:
        fields = {"delivered": report.delivered, "retried": report.retried, "given_up": report.given_up}
        logger.info("webhook events posted", extra={"fields": {**fields, "deferred": report.deferred}})
    return report


def prune_finished_events(
    session_factory: SessionFactory, *, settings: Settings, clock: Callable[[], datetime] = utcnow
) -> int:
    """Delete the events delivered or given up more than ``PIPPIN_WEBHOOK_KEEP_FINISHED`` ago, a short
    transaction per :data:`PRUNE_BATCH`; how many."""
    cutoff = clock() - settings.webhook_keep_finished
    pruned = 0
    while True:
        with transaction(session_factory) as session:
            ids = list(
                session.scalars(
                    select(WebhookEvent.id)
                    .where(WebhookEvent.finished_at.is_not(None), WebhookEvent.finished_at < cutoff)
                    .order_by(WebhookEvent.finished_at)
                    .limit(PRUNE_BATCH)
                )
            )
            if ids:
                session.execute(delete(WebhookEvent).where(WebhookEvent.id.in_(ids)))
        pruned += len(ids)
        if len(ids) < PRUNE_BATCH:
            return pruned
