"""The push domain's periodic jobs for `pippin serve`: send the due pushes, and sweep for silent devices.

Two jobs (``jobs/periodic.py``), so a long sweep never delays a push. Several Pippin processes may run them on
one database: the sender's claims and the sweep's ``SKIP LOCKED`` give each push and each look to one of them.
Nothing is kept between runs: what is due lives on the rows (``next_attempt_at``, ``next_sweep_at``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from pippin.config import Settings
from pippin.jobs.periodic import PeriodicJob, ShouldStop
from pippin.push.delivery import CertificateRefusal, IdentityLoader, PushSender, send_due_pushes
from pippin.push.sweep import sweep_silent_devices
from pippin.store.db import SessionFactory
from pippin.store.models import utcnow

#: How soon a push asked for (a command queued) goes out at the latest.
SEND_TICK = timedelta(seconds=2)
#: How often the sweep looks; a shorter silence period is honoured too.
SWEEP_TICK = timedelta(minutes=5)


def push_jobs(
    session_factory: SessionFactory,
    *,
    settings: Settings,
    sender: PushSender,
    load_identity: IdentityLoader,
    record_certificate_refusal: CertificateRefusal,
    clock: Callable[[], datetime] = utcnow,
) -> list[PeriodicJob]:
    """The push domain's periodic jobs, for the server's job runner."""
    rng = random.Random()

    def send(should_stop: ShouldStop) -> None:
        send_due_pushes(
            session_factory,
            sender=sender,
            load_identity=load_identity,
            record_certificate_refusal=record_certificate_refusal,
            settings=settings,
            clock=clock,
            rng=rng,
            should_stop=should_stop,
        )

    def sweep(should_stop: ShouldStop) -> None:
        sweep_silent_devices(session_factory, settings=settings, clock=clock, should_stop=should_stop)

    return [
        PeriodicJob("push.send_due", SEND_TICK, send),
        PeriodicJob("push.sweep_silent", min(SWEEP_TICK, settings.push_silent_after), sweep),
    ]
