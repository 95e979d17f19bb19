"""The sync's visible health: its runs, the state of each token's sync, and why a sync may not start now."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.dep.schemas import DEPTokenRead
from pippin.dep.sync_schemas import SyncHealthRead, SyncRunRead
from pippin.errors import Conflict, InvalidInput, NotFound
from pippin.store.models import DEPToken, SyncOutcome, SyncRun, utcnow
from pippin.text import check_text

MAX_HISTORY = 500


class SyncWindowClosed(Conflict):
    """Another sync of the token holds its window (the seed: "Sync is disabled" meanwhile).

    ``retry_at`` is when the window ends at the latest; it reopens sooner if that sync finishes first.
    """

    code = "sync_window_closed"

    def __init__(self, *, token_name: str, retry_at: datetime) -> None:
        stamp = retry_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        super().__init__(
            f"A sync of DEP token {token_name!r} is already running; Sync is disabled until it finishes "
            f"or its window ends at {stamp}.",
            hint=f"Try again after {stamp}; `pippin dep sync-history {token_name}` shows the running sync.",
        )
        self.token_name = token_name
        self.retry_at = retry_at

    @property
    def retry_after(self) -> int:
        """Seconds until the window reopens at the latest (the API's ``Retry-After``)."""
        return self.retry_after_seconds()

    def retry_after_seconds(self, *, now: datetime | None = None) -> int:
        """Whole seconds until ``retry_at`` (at least 1), for an HTTP ``Retry-After`` header."""
        remaining = (self.retry_at - (now or utcnow())).total_seconds()
        return max(1, int(remaining + 0.999))


def sync_run_read(run: SyncRun, *, token_name: str) -> SyncRunRead:
    """A run as the API and ``--json`` show it; a succeeded run's problem code is a warning, not an error."""
    succeeded = run.outcome == SyncOutcome.succeeded
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return SyncRunRead(
        id=run.id,
        token=token_name,
        kind=run.kind,
        trigger=run.trigger,
        started_at=run.started_at,
        finished_at=run.finished_at,
        window_ends_at=run.window_ends_at,
        outcome=run.outcome,
        error_code=None if succeeded else run.error_code,
        error_message=None if succeeded else run.error_message,
        warning=run.error_message if succeeded else None,
        pages=run.pages,
        added=run.added,
        modified=run.modified,
        removed=run.removed,
        unchanged=run.unchanged,
        duration_seconds=duration,
    )


def _token_named(session: Session, name: str) -> DEPToken:
    check_text(name, field="The DEP token name")
    token = session.scalars(select(DEPToken).where(DEPToken.name == name)).one_or_none()
    if token is None:
        raise NotFound(
            f"There is no DEP token named {name!r}.",
            hint="`pippin dep tokens` lists the tokens Pippin knows.",
        )
    return token


def list_sync_runs(session: Session, *, token_name: str, limit: int = 20) -> list[SyncRunRead]:
    """The token's latest runs, newest first."""
    if not 1 <= limit <= MAX_HISTORY:
        raise InvalidInput(f"limit must be between 1 and {MAX_HISTORY}.", hint="Ask for fewer runs.")
    token = _token_named(session, token_name)
    runs = session.scalars(
        select(SyncRun)
        .where(SyncRun.token_id == token.id)
        .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
        .limit(limit)
    ).all()
    return [sync_run_read(run, token_name=token.name) for run in runs]


def sync_health(
    session: Session, *, token: DEPToken, settings: Settings, now: datetime | None = None
) -> SyncHealthRead:
    """The ``sync`` object of a token: its last run, when the next ones may and will run, and what runs now."""
    moment = now or utcnow()
    newest_first = (SyncRun.started_at.desc(), SyncRun.id.desc())  # walks ix_sync_runs_token_started backwards
    last = session.scalars(select(SyncRun).where(SyncRun.token_id == token.id).order_by(*newest_first).limit(1)).first()
    # A token's runs never overlap (the sync window), so the last to start is the last to finish.
    last_success_at = session.scalars(
        select(SyncRun.finished_at)
        .where(SyncRun.token_id == token.id, SyncRun.outcome == SyncOutcome.succeeded)
        .order_by(*newest_first)
        .limit(1)
    ).first()
    running = token.sync_window_until is not None and token.sync_window_until > moment
    next_full = None
    if token.last_full_sync_at is not None and token.last_full_sync_at + settings.dep_full_sync_interval > moment:
        next_full = token.last_full_sync_at + settings.dep_full_sync_interval
    return SyncHealthRead(
        last_run=None if last is None else sync_run_read(last, token_name=token.name),
        last_success_at=last_success_at,
        last_full_sync_at=token.last_full_sync_at,
        next_full_sync_allowed_at=next_full,
        next_sync_at=token.next_sync_at,
        running=running,
        window_reopens_at=token.sync_window_until if running else None,
        cursor_kind=token.cursor_kind,
    )


def token_sync_health(
    session: Session, *, token_name: str, settings: Settings, now: datetime | None = None
) -> SyncHealthRead:
    """:func:`sync_health` of the token called ``token_name``."""
    return sync_health(session, token=_token_named(session, token_name), settings=settings, now=now)


def with_sync_health(
    session: Session, *, tokens: list[DEPTokenRead], settings: Settings, now: datetime | None = None
) -> list[DEPTokenRead]:
    """The tokens, each with its ``sync`` object filled in (`pippin dep tokens`, ``GET /api/v1/dep/tokens``)."""
    return [
        token.model_copy(update={"sync": token_sync_health(session, token_name=token.name, settings=settings, now=now)})
        for token in tokens
    ]
