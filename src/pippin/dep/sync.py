"""The DEP sync engine: bring one token's devices from Apple into the inventory, losing nothing.

Apple's protocol (reference section 6): a *fetch* (``/server/devices``) pages through every device assigned to
the MDM server; its last cursor starts the *sync* (``/devices/sync``) change log. Pippin's rules on top:

- **One page, one transaction.** Each page's devices, the cursor that follows them and the run's counts are
  committed together, so a sync killed at any point resumes from the last committed page with nothing lost
  or applied twice. That is why this module takes a *session factory* and commits, one short transaction
  per page, unlike ordinary services.
- **The sync window** (the seed's 10 minutes): a run first claims the token's window with one conditional
  UPDATE (``store/locks.py``); it stops after the page in hand when the window ends (``timed_out``), and
  releases the window as soon as it finishes. Every page's transaction re-checks that the run still owns it.
- **Full syncs** (the seed's 7 days): a full sync within ``dep_full_sync_interval`` of the last one only adds
  serials not yet known, and leaves the change-log cursor where it was; after it, the fetch refreshes every
  serial and marks those Apple no longer returns ``removed``.
- **Healing**: ``EXHAUSTED_CURSOR`` switches to sync with the same cursor; ``EXPIRED_CURSOR``,
  ``INVALID_CURSOR`` and ``CURSOR_REQUIRED`` start a refreshing fetch from scratch; Apple repeating the cursor
  with ``more_to_follow`` (reference section 8) ends the run with a warning instead of looping.

A run ends at its last page. Giving the devices it brought their profiles is the next step of "Sync now", composed
with this one in ``dep/sync_and_assign.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.config import Settings
from pippin.dep.devices import AppleDevice, PageCounts, PageMode, apply_device_page, mark_missing_removed
from pippin.dep.errors import CursorError, CursorExhausted, DEPAuthFailure, DEPError
from pippin.dep.sync_runs import SyncWindowClosed, sync_run_read
from pippin.dep.sync_schemas import SyncRunRead
from pippin.dep.token import REFUSED_STATUSES, record_dep_failure, record_dep_success
from pippin.errors import Conflict, NotFound
from pippin.store.db import SessionFactory, transaction
from pippin.store.locks import claim_sync_window, hold_sync_window, release_sync_window
from pippin.store.models import CursorKind, DEPToken, SyncKind, SyncOutcome, SyncRun, utcnow
from pippin.text import check_text

logger = logging.getLogger(__name__)

#: Apple's largest page (reference 3.2, 3.3); a smaller advertised maximum from ``/account`` wins.
MAX_PAGE_SIZE = 1000


class ApplePage(Protocol):
    """One fetch or sync answer (``pippin.dep.wire.DevicePage``)."""

    @property
    def devices(self) -> Sequence[AppleDevice]: ...
    @property
    def cursor(self) -> str: ...
    @property
    def more_to_follow(self) -> bool: ...


class DevicePager(Protocol):
    """The two ``DEPClient`` calls a sync makes, and ``close``."""

    def fetch_devices(self, *, cursor: str | None = None, limit: int | None = None) -> ApplePage: ...
    def sync_devices(self, *, cursor: str, limit: int | None = None) -> ApplePage: ...
    def close(self) -> None: ...


ClientFactory = Callable[[DEPToken], DevicePager]


@dataclass(frozen=True)
class SyncProgress:
    """What a run has done so far; passed to the progress callback after every committed page."""

    phase: str  # "fetch", "sweep" (a full sync that only adds) or "sync"
    pages: int
    devices: int
    counts: PageCounts


ProgressCallback = Callable[[SyncProgress], None]


class _WindowLost(Exception):
    """The run's window ended and another run claimed the token: stop without writing the page in hand."""


def _page_size(advertised: int | None) -> int:
    return min(MAX_PAGE_SIZE, advertised) if advertised and advertised > 0 else MAX_PAGE_SIZE


def start_sync(
    session: Session,
    *,
    token_name: str,
    settings: Settings,
    full: bool = False,
    trigger: str = "manual",
    actor: Actor | None = None,
    now: datetime | None = None,
) -> SyncRunRead:
    """Claim the token's sync window and record a ``running`` run; commit, then run it with :func:`run_sync`.

    An admin's "Sync now" (``actor``) is recorded in the audit log with the claim; Pippin's own scheduled syncs
    pass no actor (the sync history records them).

    Raises :class:`SyncWindowClosed` while another sync holds the window: across processes and machines
    sharing the database, exactly one of several simultaneous callers gets it (the claim is decided when the
    caller's transaction commits; other claimers wait for it). Raising leaves the caller's transaction to roll
    back, which takes the refused run with it.
    """
    moment = now or utcnow()
    check_text(token_name, field="The DEP token name")
    # Locked from the start (the claim below locks it anyway): a deletion of the token (``dep/token_deletion.py``)
    # in progress is waited for, and then the token is not found, instead of a run inserted for a deleted token.
    token = session.scalars(select(DEPToken).where(DEPToken.name == token_name).with_for_update()).one_or_none()
    if token is None:
        raise NotFound(
            f"There is no DEP token named {token_name!r}.",
            hint="`pippin dep tokens` lists the tokens Pippin knows.",
        )
    if token.credentials_encrypted is None:
        raise Conflict(
            f"DEP token {token_name!r} has no server token from Apple yet, so there is nothing to sync.",
            hint="Download the server token for this MDM server in Apple Business Manager and upload it with "
            "`pippin dep upload-token`.",
        )
    fetching = full or token.cursor is None or token.cursor_kind == CursorKind.fetch
    run = SyncRun(
        token_id=token.id,
        kind=SyncKind.full if fetching else SyncKind.incremental,
        trigger=trigger,
        started_at=moment,
        window_ends_at=moment + settings.dep_sync_window,
        outcome=SyncOutcome.running,
    )
    session.add(run)
    session.flush()
    if not claim_sync_window(session, token_id=token.id, run_id=run.id, until=run.window_ends_at, now=moment):
        session.refresh(token)
        raise SyncWindowClosed(token_name=token_name, retry_at=token.sync_window_until or moment)
    # Runs whose process died keep "running" forever otherwise; their window is over, so say what happened.
    session.execute(
        update(SyncRun)
        .where(
            SyncRun.token_id == token.id,
            SyncRun.id != run.id,
            SyncRun.outcome == SyncOutcome.running,
            SyncRun.window_ends_at <= moment,
        )
        .values(outcome=SyncOutcome.failed, error_code="abandoned", finished_at=SyncRun.window_ends_at)
        .execution_options(synchronize_session=False)
    )
    if actor is not None:
        audit.record_event(
            session,
            actor=actor,
            action=AuditAction.dep_sync_start,
            target=token_name,
            detail={"full": full, "kind": run.kind},
            now=moment,
        )
    return sync_run_read(run, token_name=token_name)


class _TimedOut(Exception):
    """The run's window ended before Apple had nothing more to send."""


class _RepeatedCursor(Exception):
    """Apple answered with the cursor it was given and ``more_to_follow`` still true (reference section 8)."""


@dataclass
class _Outcome:
    outcome: SyncOutcome = SyncOutcome.succeeded
    code: str | None = None
    message: str | None = None
    auth_failure: DEPAuthFailure | None = None


class _Run:
    """One claimed run: the phases it goes through and the per-page transactions that record them."""

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        run: SyncRun,
        token: DEPToken,
        client: DevicePager,
        clock: Callable[[], datetime],
        progress: ProgressCallback | None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.factory = session_factory
        self.run_id = run.id
        self.token_id = token.id
        self.token_name = token.name
        self.window_ends_at = run.window_ends_at
        self.client = client
        self.clock = clock
        self.progress = progress
        self.should_stop = should_stop
        self.fetch_limit = _page_size(token.fetch_limit)
        self.sync_limit = _page_size(token.sync_limit)
        self.pages = 0
        self.devices = 0
        self.counts = PageCounts()
        self.warning: tuple[str, str] | None = None

    # --- phases ------------------------------------------------------------------------------------------------

    def fetch(self, cursor: str | None) -> str:
        """Read every device (refreshing), from ``cursor`` or from scratch; returns the cursor to sync from."""
        starting = cursor is None
        while True:
            self._check_window()
            try:
                page = self.client.fetch_devices(cursor=cursor, limit=self.fetch_limit)
            except CursorExhausted:
                # The stored fetch cursor already returned everything: the fetch is complete, sync from it.
                assert cursor is not None
                self._commit(
                    None,
                    mode=PageMode.refresh,
                    phase="fetch",
                    cursor=cursor,
                    kind=CursorKind.sync,
                    completes_fetch=True,
                )
                return cursor
            final = not page.more_to_follow
            self._commit(
                page,
                mode=PageMode.refresh,
                phase="fetch",
                cursor=page.cursor,
                kind=CursorKind.sync if final else CursorKind.fetch,
                completes_fetch=final,
                new_fetch=starting,
            )
            starting = False
            if final:
                return page.cursor
            self._guard_repeat(cursor, page)
            cursor = page.cursor

    def sweep(self) -> None:
        """A full sync within the full-sync interval: add serials not yet known; the sync cursor stays put.

        The sweep's own cursor is kept only in memory: an interrupted sweep loses nothing (the change log still
        continues from the stored cursor); the next full sync simply sweeps again.
        """
        cursor: str | None = None
        while True:
            self._check_window()
            page = self.client.fetch_devices(cursor=cursor, limit=self.fetch_limit)
            self._commit(page, mode=PageMode.add_only, phase="sweep", cursor=None, kind=None)
            if not page.more_to_follow:
                return
            self._guard_repeat(cursor, page)
            cursor = page.cursor

    def sync(self, cursor: str) -> None:
        """Apply the change log from ``cursor`` until Apple has nothing more to send."""
        while True:
            self._check_window()
            page = self.client.sync_devices(cursor=cursor, limit=self.sync_limit)
            self._commit(page, mode=PageMode.changes, phase="sync", cursor=page.cursor, kind=CursorKind.sync)
            if not page.more_to_follow:
                return
            self._guard_repeat(cursor, page)
            cursor = page.cursor

    def restart_from_scratch(self, error: CursorError) -> None:
        """Forget a cursor Apple refused, so this run (or, if it stops, the next) reads every device again."""
        self.warning = (
            error.apple_code or error.code,
            f"Apple refused the stored cursor ({error.apple_code or error.code}); Pippin read every device again.",
        )
        logger.warning(
            "sync cursor refused, reading every device again",
            extra={"fields": {"token": self.token_name, "code": error.apple_code or error.code}},
        )
        with transaction(self.factory) as session:
            if not hold_sync_window(session, token_id=self.token_id, run_id=self.run_id):
                raise _WindowLost
            token = session.get_one(DEPToken, self.token_id)
            token.cursor = None
            token.cursor_kind = None
            token.cursor_issued_at = None
            session.get_one(SyncRun, self.run_id).kind = SyncKind.full

    # --- steps -------------------------------------------------------------------------------------------------

    def _check_window(self) -> None:
        if self.clock() >= self.window_ends_at or (self.should_stop is not None and self.should_stop()):
            raise _TimedOut

    def _guard_repeat(self, cursor: str | None, page: ApplePage) -> None:
        if page.more_to_follow and page.cursor == cursor:
            raise _RepeatedCursor

    def _commit(
        self,
        page: ApplePage | None,
        *,
        mode: PageMode,
        phase: str,
        cursor: str | None,
        kind: CursorKind | None,
        completes_fetch: bool = False,
        new_fetch: bool = False,
    ) -> None:
        """Apply a page and store the cursor that follows it (if any) in ONE transaction: the heart of the sync."""
        devices = page.devices if page is not None else []
        with transaction(self.factory) as session:
            if not hold_sync_window(session, token_id=self.token_id, run_id=self.run_id):
                raise _WindowLost
            now = self.clock()
            token = session.get_one(DEPToken, self.token_id)
            if new_fetch:
                token.fetch_generation += 1
            counts = apply_device_page(
                session, token_id=self.token_id, devices=devices, mode=mode, generation=token.fetch_generation, now=now
            )
            if completes_fetch and mode is PageMode.refresh:
                gone = mark_missing_removed(session, token_id=self.token_id, generation=token.fetch_generation, now=now)
                counts = counts + PageCounts(removed=gone)
                token.last_full_sync_at = now
            if kind is not None and cursor is not None:
                token.cursor = cursor
                token.cursor_kind = kind
                token.cursor_issued_at = now
                token.fetch_refreshes = True
            run = session.get_one(SyncRun, self.run_id)
            run.pages += 1 if page is not None else 0
            run.added += counts.added
            run.modified += counts.modified
            run.removed += counts.removed
            run.unchanged += counts.unchanged
        if counts.skipped:
            logger.warning(
                "Apple sent device records without a usable serial number; they were skipped",
                extra={"fields": {"token": self.token_name, "skipped": counts.skipped}},
            )
        self.pages += 1 if page is not None else 0
        self.devices += len(devices)
        self.counts = self.counts + counts
        if self.progress is not None:
            self.progress(SyncProgress(phase=phase, pages=self.pages, devices=self.devices, counts=self.counts))


def _plan_and_run(engine: _Run, *, kind: str, settings: Settings, now: datetime) -> None:
    with transaction(engine.factory) as session:
        token = session.get_one(DEPToken, engine.token_id)
        cursor, cursor_kind, last_full = token.cursor, token.cursor_kind, token.last_full_sync_at
    try:
        if cursor is not None and cursor_kind == CursorKind.fetch:
            engine.sync(engine.fetch(cursor))  # a fetch in progress resumes, whatever was asked
        elif cursor is None:
            engine.sync(engine.fetch(None))  # the first sync, or one whose cursor was lost: read everything
        elif kind == SyncKind.full and (last_full is None or now - last_full >= settings.dep_full_sync_interval):
            engine.sync(engine.fetch(None))
        elif kind == SyncKind.full:
            engine.sweep()
            engine.sync(cursor)
        else:
            engine.sync(cursor)
    except CursorError as error:
        if isinstance(error, CursorExhausted):
            raise
        engine.restart_from_scratch(error)
        engine.sync(engine.fetch(None))


def run_sync(
    session_factory: SessionFactory,
    *,
    run_id: int,
    settings: Settings,
    open_dep_client: ClientFactory,
    progress: ProgressCallback | None = None,
    clock: Callable[[], datetime] = utcnow,
    raise_unexpected: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> SyncRunRead:
    """Carry out a run claimed by :func:`start_sync`, one committed transaction per page; returns how it ended.

    Apple's failures end the run ``failed`` and are recorded (an authentication failure on the token too);
    pages already committed stay, and the cursor is exactly where the last of them left it. Any other error
    is recorded as ``internal_error`` and logged, then raised again unless ``raise_unexpected`` is false (a
    background run has nobody to raise it to). ``should_stop`` ends the run at the next page boundary like
    the end of its window (a server shutting down).
    """
    with transaction(session_factory) as session:
        run = session.get(SyncRun, run_id)
        if run is None or run.outcome != SyncOutcome.running:
            raise Conflict(f"Sync run {run_id} is not waiting to run.", hint="Start a new sync.")
        token = session.get_one(DEPToken, run.token_id)
    result = _Outcome()
    engine: _Run | None = None
    unexpected: BaseException | None = None
    try:
        client = open_dep_client(token)
        try:
            engine = _Run(
                session_factory,
                run=run,
                token=token,
                client=client,
                clock=clock,
                progress=progress,
                should_stop=should_stop,
            )
            _plan_and_run(engine, kind=run.kind, settings=settings, now=clock())
        finally:
            client.close()
    except _RepeatedCursor:
        result.code = "repeated_cursor"
        result.message = (
            "Apple sent back the same cursor with more_to_follow still set; the sync stopped there and the next "
            "one continues from it."
        )
        logger.warning("Apple repeated the sync cursor; stopping this run", extra={"fields": {"token": token.name}})
    except _TimedOut:
        result = _Outcome(SyncOutcome.timed_out, "window_ended", "The sync window ended; the next sync resumes.")
    except _WindowLost:
        result = _Outcome(
            SyncOutcome.timed_out, "window_lost", "The sync window ended and another sync took over the token."
        )
    except DEPAuthFailure as error:
        result = _Outcome(SyncOutcome.failed, error.code, str(error), auth_failure=error)
    except DEPError as error:
        result = _Outcome(SyncOutcome.failed, error.code, str(error))
    except Exception as error:  # recorded, then raised again: a bug must not leave the run "running"
        unexpected = error
        result = _Outcome(SyncOutcome.failed, "internal_error", "Pippin failed during the sync; see its log.")
        logger.exception("sync failed unexpectedly", extra={"fields": {"token": token.name, "run": run_id}})
    if result.outcome is SyncOutcome.succeeded and result.code is None and engine is not None and engine.warning:
        result.code, result.message = engine.warning
    finished = _finish(
        session_factory,
        run_id=run_id,
        token_id=token.id,
        result=result,
        settings=settings,
        now=clock(),
        talked_to_apple=engine is not None and engine.pages > 0,
    )
    logger.info(
        "sync finished",
        extra={
            "fields": {
                "token": token.name,
                "run": run_id,
                "outcome": finished.outcome,
                "pages": finished.pages,
                "added": finished.added,
                "modified": finished.modified,
                "removed": finished.removed,
            }
        },
    )
    if unexpected is not None and raise_unexpected:
        raise unexpected
    return finished


def _finish(
    session_factory: SessionFactory,
    *,
    run_id: int,
    token_id: int,
    result: _Outcome,
    settings: Settings,
    now: datetime,
    talked_to_apple: bool,
) -> SyncRunRead:
    """Record how the run ended, release its window at once, and schedule the next sync."""
    with transaction(session_factory) as session:
        run = session.get_one(SyncRun, run_id)
        token = session.get_one(DEPToken, token_id)
        run.outcome = result.outcome
        run.error_code = result.code
        run.error_message = result.message
        run.finished_at = now
        release_sync_window(session, token_id=token_id, run_id=run_id, now=now)
        # A run cut short by its window resumes at the scheduler's next look, not a whole interval later.
        token.next_sync_at = now if result.outcome is SyncOutcome.timed_out else now + settings.dep_sync_interval
        # A refusal recorded on the token while the run went on (an assignment sent with the same token, say) is
        # newer than the sync's success, and stands.
        refused_during_run = token.status in REFUSED_STATUSES and (
            token.last_error_at is not None and token.last_error_at >= run.started_at
        )
        if result.auth_failure is not None:
            record_dep_failure(token, result.auth_failure, now=now)
        elif (result.outcome is SyncOutcome.succeeded or talked_to_apple) and not refused_during_run:
            record_dep_success(token, now=now)
        return sync_run_read(run, token_name=token.name)


def sync_now(
    session_factory: SessionFactory,
    *,
    token_name: str,
    settings: Settings,
    open_dep_client: ClientFactory,
    full: bool = False,
    trigger: str = "manual",
    progress: ProgressCallback | None = None,
    clock: Callable[[], datetime] = utcnow,
    should_stop: Callable[[], bool] | None = None,
) -> SyncRunRead:
    """Claim the window and run the sync here and now (the CLI and the scheduler); see :func:`run_sync`."""
    with transaction(session_factory) as session:
        started = start_sync(session, token_name=token_name, settings=settings, full=full, trigger=trigger, now=clock())
    return run_sync(
        session_factory,
        run_id=started.id,
        settings=settings,
        open_dep_client=open_dep_client,
        progress=progress,
        clock=clock,
        should_stop=should_stop,
    )
