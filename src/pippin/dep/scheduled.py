"""Scheduled syncs for `pippin serve`: every token in good standing syncs every ``dep_sync_interval``.

Between syncs, profile assignments whose wait is over (Apple's ``retry_after_seconds`` for a throttled device,
24 hours for a failed one) are sent at the next tick rather than with the next sync.

Tokens Apple refused for a reason an admin fixes at Apple (new terms not accepted, access denied, a token
replaced by a newer download) are asked about again once per interval with ``GET /account``, so a fix brings
them back to ok, and syncing, on its own (reference section 1.4: fleet clears its terms flag on the next success).

Several Pippin processes may run the scheduler against one database: each looks for due tokens, and the sync
window (``store/locks.py``) lets exactly one of them sync a token; the others skip it. Nothing here keeps
state between ticks: a token's next sync time lives on its row (``next_sync_at``), set when a run ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import httpx
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep.assignment_runner import ProfileClientFactory, count_due, profile_client_factory, run_due_assignments
from pippin.dep.errors import DEPError
from pippin.dep.sync import ClientFactory, dep_client_factory, sync_now
from pippin.dep.sync_runs import SyncWindowClosed
from pippin.dep.sync_schemas import SyncRunRead
from pippin.dep.token import FIXABLE_REFUSALS, fetch_account
from pippin.errors import PippinError
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import DEPToken, TokenStatus, utcnow

logger = logging.getLogger(__name__)

#: The scheduler looks for due tokens at least this often, so a shorter sync interval is honoured too.
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

    Each check is its own transaction, committed whatever Apple answers, so a refusal moves ``last_error_at``
    on and the token is not asked again before another interval has passed.
    """
    with transaction(session_factory) as session:
        names = refused_token_names(session, now=now or utcnow(), interval=settings.dep_sync_interval)
    recovered: list[str] = []
    for name in names:
        with transaction(session_factory) as session:
            try:
                fetch_account(session, name=name, box=box, settings=settings, transport=transport)
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
    open_dep_client: ClientFactory,
    now: datetime | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[SyncRunRead]:
    """Run an incremental sync of every due token, one after the other; returns the runs this process made.

    A token another process is syncing is skipped; one sync's failure (recorded on its run) never stops the rest.
    """
    with transaction(session_factory) as session:
        names = due_token_names(session, now=now or utcnow())
    runs: list[SyncRunRead] = []
    for name in names:
        if should_stop is not None and should_stop():
            break
        try:
            runs.append(
                sync_now(
                    session_factory,
                    token_name=name,
                    settings=settings,
                    open_dep_client=open_dep_client,
                    trigger="scheduled",
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
    open_client: ProfileClientFactory,
    now: datetime | None = None,
) -> int:
    """Send the due assignments of every token in good standing; returns how many devices were sent.

    Refused tokens are left out: their devices stay queued until the token is back (see
    :func:`recheck_refused_tokens`), and asking Apple with them again would only repeat the refusal.
    """
    moment = now or utcnow()
    with transaction(session_factory) as session:
        token_ids = session.scalars(select(DEPToken.id).where(in_good_standing(moment)).order_by(DEPToken.id)).all()
        due = [token_id for token_id in token_ids if count_due(session, now=moment, token_id=token_id)]
    sent = 0
    for token_id in due:
        report = run_due_assignments(
            session_factory, settings=settings, open_client=open_client, clock=lambda: moment, token_id=token_id
        )
        sent += report.sent
    return sent


@contextmanager
def scheduled_syncs(
    session_factory: SessionFactory,
    *,
    settings: Settings,
    box: SecretBox,
    open_dep_client: ClientFactory | None = None,
) -> Iterator[threading.Thread]:
    """Run :func:`run_due_syncs` on a background thread until the block ends (the API app's lifespan).

    Stopping ends the sync in progress at its next page boundary (outcome ``timed_out``); it resumes from its
    cursor on the next tick, in this process or another.
    """
    opener = open_dep_client or dep_client_factory(box=box, settings=settings)
    profile_opener = profile_client_factory(box=box, settings=settings)
    stopping = threading.Event()
    tick = min(MAX_TICK, settings.dep_sync_interval).total_seconds()

    def loop() -> None:
        while not stopping.is_set():
            try:
                recheck_refused_tokens(session_factory, settings=settings, box=box)
            except Exception:  # the database may be briefly away; try again next tick
                logger.exception("refused tokens could not be rechecked")
            try:
                run_due_syncs(session_factory, settings=settings, open_dep_client=opener, should_stop=stopping.is_set)
            except Exception:
                logger.exception("scheduled syncs could not run")
            try:
                send_due_assignments(session_factory, settings=settings, open_client=profile_opener)
            except Exception:
                logger.exception("due profile assignments could not be sent")
            stopping.wait(tick)

    thread = threading.Thread(target=loop, name="pippin-scheduled-syncs", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stopping.set()
        thread.join(timeout=settings.dep_timeout * 2)
