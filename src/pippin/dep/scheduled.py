"""DEP's periodic jobs for `pippin serve`: every token in good standing syncs every ``dep_sync_interval``.

Between syncs, profile assignments whose wait is over (Apple's ``retry_after_seconds`` for a throttled device,
24 hours for a failed one) are sent at the next tick rather than with the next sync.

Tokens Apple refused for a reason an admin fixes at Apple (new terms not accepted, access denied, a token
replaced by a newer download) are asked about again once per interval with ``GET /account``, so a fix brings
them back to ok, and syncing, on its own (reference section 1.4: fleet clears its terms flag on the next success).

The three are separate jobs (``jobs/periodic.py``), so a long sync delays neither the rechecks nor the assignments.
Several Pippin processes may run them against one database: each looks for due tokens, and the sync window
(``store/locks.py``) lets exactly one of them sync a token; the others skip it. Nothing here keeps state between
runs: a token's next sync time lives on its row (``next_sync_at``), set when a run ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep.assignment_runner import ProfileClientFactory, count_due, run_due_assignments
from pippin.dep.errors import DEPError
from pippin.dep.sync_and_assign import SyncingClientFactory, sync_and_assign_now
from pippin.dep.sync_runs import SyncWindowClosed
from pippin.dep.sync_schemas import SyncRunRead
from pippin.dep.token import FIXABLE_REFUSALS, fetch_account
from pippin.errors import PippinError
from pippin.jobs.periodic import PeriodicJob, ShouldStop
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import DEPToken, TokenStatus, utcnow

logger = logging.getLogger(__name__)

#: The jobs look for due work at least this often, so a shorter sync interval is honoured too.
MAX_TICK = timedelta(minutes=1)


def _uploaded_and_unexpired(now: datetime) -> ColumnElement[bool]:
    return and_(
        DEPToken.credentials_encrypted.is_not(None),
        or_(DEPToken.expires_at.is_(None), DEPToken.expires_at > now),
    )


def in_good_standing(now: datetime) -> ColumnElement[bool]:
    """Tokens Pippin may use: uploaded, status ok, not expired."""
    return and_(DEPToken.status == TokenStatus.ok, _uploaded_and_unexpired(now))


def refused_token_names(session: Session, *, now: datetime, interval: timedelta) -> list[str]:
    """Tokens Apple refused for a fixable reason, last refused at least ``interval`` ago."""
    return list(
        session.scalars(
            select(DEPToken.name)
            .where(
                # An expired token needs a new download and upload, so it is not asked again.
                DEPToken.status.in_(FIXABLE_REFUSALS),
                _uploaded_and_unexpired(now),
                or_(DEPToken.last_error_at.is_(None), DEPToken.last_error_at <= now - interval),
            )
            .order_by(DEPToken.name)
        )
    )


def recheck_refused_tokens(
    session_factory: SessionFactory,
    *,
    settings: Settings,
    box: SecretBox,
    now: datetime | None = None,
    transport: httpx.BaseTransport | None = None,
) -> list[str]:
    """Ask Apple about each refused token once more; returns the names now back to ok.

    Each check's outcome is committed whatever Apple answers, so a refusal moves ``last_error_at`` on and the
    token is not asked again before another interval has passed.
    """
    with read_transaction(session_factory) as session:
        names = refused_token_names(session, now=now or utcnow(), interval=settings.dep_sync_interval)
    recovered: list[str] = []
    for name in names:
        # fetch_account commits its own short steps around the call to Apple, so none is held open while it answers.
        try:
            fetch_account(session_factory, name=name, box=box, settings=settings, transport=transport)
        except DEPError as error:
            logger.info("Apple still refuses the token: %s", error.message, extra={"fields": {"token": name}})
            continue
        except PippinError as error:  # e.g. a secret that no longer decrypts: one token never stops the rest
            logger.warning("token not rechecked: %s", error.message, extra={"fields": {"token": name}})
            continue
        logger.info("Apple accepts the token again; syncing resumes", extra={"fields": {"token": name}})
        recovered.append(name)
    return recovered


def due_token_names(session: Session, *, now: datetime) -> list[str]:
    """Tokens in good standing (status ok, not expired) whose next sync is due and whose window is free."""
    return list(
        session.scalars(
            select(DEPToken.name)
            .where(
                in_good_standing(now),
                or_(DEPToken.next_sync_at.is_(None), DEPToken.next_sync_at <= now),
                or_(DEPToken.sync_window_until.is_(None), DEPToken.sync_window_until <= now),
            )
            .order_by(DEPToken.next_sync_at.is_not(None), DEPToken.next_sync_at, DEPToken.name)
        )
    )


def run_due_syncs(
    session_factory: SessionFactory,
    *,
    settings: Settings,
    box: SecretBox,
    open_client: SyncingClientFactory,
    clock: Callable[[], datetime] = utcnow,
    should_stop: Callable[[], bool] | None = None,
) -> list[SyncRunRead]:
    """Sync every due token (and assign profiles after), one after the other; returns the runs this process made.

    A token another process is syncing is skipped; one sync's failure (recorded on its run) never stops the rest.
    """
    with transaction(session_factory) as session:
        names = due_token_names(session, now=clock())
    runs: list[SyncRunRead] = []
    for name in names:
        if should_stop is not None and should_stop():
            break
        try:
            runs.append(
                sync_and_assign_now(
                    session_factory,
                    token_name=name,
                    settings=settings,
                    box=box,
                    open_client=open_client,
                    trigger="scheduled",
                    clock=clock,
                    should_stop=should_stop,
                )
            )
        except SyncWindowClosed:
            logger.debug("token already syncing elsewhere", extra={"fields": {"token": name}})
        except PippinError as error:
            logger.warning("scheduled sync not started: %s", error.message, extra={"fields": {"token": name}})
        except Exception:
            logger.exception("scheduled sync failed", extra={"fields": {"token": name}})
    return runs


def send_due_assignments(
    session_factory: SessionFactory,
    *,
    settings: Settings,
    box: SecretBox,
    open_client: ProfileClientFactory,
    clock: Callable[[], datetime] = utcnow,
) -> int:
    """Send the due assignments of every token in good standing; returns how many devices were sent.

    Refused tokens are left out: their devices stay queued until the token is back (see
    :func:`recheck_refused_tokens`), and asking Apple with them again would only repeat the refusal. The runner
    gets the clock itself, not the moment the job started: each batch's lease and Apple's retry times are
    counted from when that batch is claimed and answered, however long the pass takes.
    """
    moment = clock()
    with transaction(session_factory) as session:
        token_ids = session.scalars(select(DEPToken.id).where(in_good_standing(moment)).order_by(DEPToken.id)).all()
        due = [token_id for token_id in token_ids if count_due(session, now=moment, token_id=token_id)]
    sent = 0
    for token_id in due:
        report = run_due_assignments(
            session_factory,
            settings=settings,
            box=box,
            open_client=open_client,
            clock=clock,
            token_id=token_id,
        )
        sent += report.sent
    return sent


def dep_jobs(
    session_factory: SessionFactory,
    *,
    settings: Settings,
    box: SecretBox,
    open_client: SyncingClientFactory,
    clock: Callable[[], datetime] = utcnow,
) -> list[PeriodicJob]:
    """DEP's periodic jobs, for the server's job runner: rechecks, scheduled syncs, due assignments.

    A sync stopped by the runner ends at its next page boundary (outcome ``timed_out``) and resumes from its
    cursor at the next run, in this process or another.
    """
    tick = min(MAX_TICK, settings.dep_sync_interval)

    def recheck(_should_stop: ShouldStop) -> None:
        recheck_refused_tokens(session_factory, settings=settings, box=box, now=clock())

    def sync(should_stop: ShouldStop) -> None:
        run_due_syncs(
            session_factory, settings=settings, box=box, open_client=open_client, clock=clock, should_stop=should_stop
        )

    def assign(_should_stop: ShouldStop) -> None:
        send_due_assignments(session_factory, settings=settings, box=box, open_client=open_client, clock=clock)

    return [
        PeriodicJob("dep.recheck_refused_tokens", tick, recheck),
        PeriodicJob("dep.sync_due_tokens", tick, sync),
        PeriodicJob("dep.send_due_assignments", tick, assign),
    ]
