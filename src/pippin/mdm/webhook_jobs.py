"""The webhook's periodic jobs for `pippin serve`: post the due events, and prune the finished ones.

Two jobs (``jobs/periodic.py``), so a long prune never delays an event. Several Pippin processes may run them on one
database: the claims (``mdm/webhook_claims.py``) give each event to one of them. Nothing is kept between runs.
Without ``PIPPIN_WEBHOOK_URL`` no event is recorded and none is posted; events recorded before it was unset wait
for it to be set again (and are given up by age then), and the finished ones are still pruned.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.jobs.periodic import PeriodicJob, ShouldStop
from pippin.mdm.webhook_delivery import PosterFactory, deliver_due_events, open_http_poster, prune_finished_events
from pippin.store.db import SessionFactory
from pippin.store.models import utcnow

#: How soon a recorded event is posted at the latest.
DELIVER_TICK = timedelta(seconds=2)
PRUNE_TICK = timedelta(hours=1)


def webhook_jobs(
    session_factory: SessionFactory,
    *,
    settings: Settings,
    box: SecretBox,
    clock: Callable[[], datetime] = utcnow,
    open_poster: PosterFactory | None = None,
) -> list[PeriodicJob]:
    """The webhook's periodic jobs, for the server's job runner."""

    def prune(_should_stop: ShouldStop) -> None:
        prune_finished_events(session_factory, settings=settings, clock=clock)

    jobs = [PeriodicJob("webhooks.prune_finished", PRUNE_TICK, prune)]
    if settings.webhook_url is None:
        return jobs
    rng = random.Random()
    make_poster = open_poster or open_http_poster(settings)

    def deliver(should_stop: ShouldStop) -> None:
        deliver_due_events(
            session_factory,
            settings=settings,
            box=box,
            open_poster=make_poster,
            clock=clock,
            rng=rng,
            should_stop=should_stop,
        )

    return [PeriodicJob("webhooks.deliver_due", DELIVER_TICK, deliver), *jobs]
