""" "Sync now" as every caller does it: the sync to its last page, then profiles for the devices it brought.

The seed's step 7 (sync) and the profile half of step 5 meet here, as two steps of their own services:

1. ``dep/sync.py`` brings the token's devices from Apple, one committed page at a time, and ends at the last page.
2. When the run succeeded, ``dep/assignment.py`` queues the token's default profile for the devices it wrote
   (and for those whose profile Apple dropped), and ``dep/assignment_runner.py`` sends what is due for the token.

The CLI's ``pippin dep sync``, the API's and the console's "Sync now" and the scheduled syncs of `pippin serve`
all call this module, so the same action behaves the same wherever it is asked for. Each step commits on its
own (a session factory, not a session): a crash between them loses nothing, because the next sync's second step
picks up every device the first one wrote since the default profile's watermark.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from pippin.admin.audit import Actor
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep.assignment import assign_default_profiles
from pippin.dep.assignment_runner import ProfileAPI, run_due_assignments
from pippin.dep.profile_schemas import AssignmentRunRead
from pippin.dep.sync import DevicePager, ProgressCallback, run_sync, start_sync
from pippin.dep.sync_schemas import SyncRunRead
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import DEPToken, SyncOutcome, SyncRun, utcnow

logger = logging.getLogger(__name__)


class SyncingClient(DevicePager, ProfileAPI, Protocol):
    """What both steps ask of Apple (``DEPClient`` is one)."""


SyncingClientFactory = Callable[[DEPToken], SyncingClient]


def assign_synced_devices(
    session_factory: SessionFactory,
    *,
    token_id: int,
    settings: Settings,
    box: SecretBox,
    open_client: Callable[[DEPToken], ProfileAPI],
    clock: Callable[[], datetime] = utcnow,
) -> AssignmentRunRead:
    """The second step: the token's default profile queued for what the sync wrote, then due assignments sent.

    Apple's answers are recorded per device by the runner and never undo the sync that came before.
    """
    with transaction(session_factory) as session:
        assign_default_profiles(session, token_id=token_id, now=clock())
    return run_due_assignments(
        session_factory, settings=settings, box=box, open_client=open_client, clock=clock, token_id=token_id
    )


def run_sync_and_assign(
    session_factory: SessionFactory,
    *,
    run_id: int,
    settings: Settings,
    box: SecretBox,
    open_client: SyncingClientFactory,
    progress: ProgressCallback | None = None,
    clock: Callable[[], datetime] = utcnow,
    raise_unexpected: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> SyncRunRead:
    """Carry out a run claimed by :func:`pippin.dep.sync.start_sync`, then assign profiles if it succeeded.

    A run that failed or ran out of its window skips the second step: its devices are looked at by the next
    run that succeeds. An unexpected error in the second step is logged, and raised unless ``raise_unexpected``
    is false (a background run has nobody to raise it to); the finished run is returned either way.
    """
    finished = run_sync(
        session_factory,
        run_id=run_id,
        settings=settings,
        open_dep_client=open_client,
        progress=progress,
        clock=clock,
        raise_unexpected=raise_unexpected,
        should_stop=should_stop,
    )
    if finished.outcome != SyncOutcome.succeeded or (should_stop is not None and should_stop()):
        return finished
    with transaction(session_factory) as session:
        token_id = session.get_one(SyncRun, run_id).token_id
    try:
        assign_synced_devices(
            session_factory, token_id=token_id, settings=settings, box=box, open_client=open_client, clock=clock
        )
    except Exception:
        logger.exception("profile assignment after the sync failed", extra={"fields": {"token": finished.token}})
        if raise_unexpected:
            raise
    return finished


def sync_and_assign_now(
    session_factory: SessionFactory,
    *,
    token_name: str,
    settings: Settings,
    box: SecretBox,
    open_client: SyncingClientFactory,
    full: bool = False,
    trigger: str = "manual",
    actor: Actor | None = None,
    progress: ProgressCallback | None = None,
    clock: Callable[[], datetime] = utcnow,
    should_stop: Callable[[], bool] | None = None,
) -> SyncRunRead:
    """Claim the token's window and run both steps here and now (the CLI and the scheduler, which passes no
    ``actor``); see :func:`run_sync_and_assign`."""
    with transaction(session_factory) as session:
        started = start_sync(
            session, token_name=token_name, settings=settings, full=full, trigger=trigger, actor=actor, now=clock()
        )
    return run_sync_and_assign(
        session_factory,
        run_id=started.id,
        settings=settings,
        box=box,
        open_client=open_client,
        progress=progress,
        clock=clock,
        should_stop=should_stop,
    )
