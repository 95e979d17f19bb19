"""Pippin's shapes for DEP syncs and their health: what REST returns and ``--json`` prints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pippin.store.models import CursorKind, SyncKind, SyncOutcome, SyncTrigger


class SyncRunRead(BaseModel):
    """One sync of one token: when, what kind, how it ended and what it changed.

    ``warning`` is set when a run succeeded but met something worth knowing (Apple repeating its cursor, a
    cursor that had to be replaced by a full fetch).
    """

    id: int
    token: str
    kind: SyncKind
    trigger: SyncTrigger
    started_at: datetime
    finished_at: datetime | None
    window_ends_at: datetime
    outcome: SyncOutcome
    error_code: str | None
    error_message: str | None
    warning: str | None
    pages: int
    added: int
    modified: int
    removed: int
    unchanged: int
    duration_seconds: float | None


class SyncHealthRead(BaseModel):
    """Where a token's sync stands: the last run, the next ones, and whether one runs now."""

    last_run: SyncRunRead | None
    last_success_at: datetime | None
    last_full_sync_at: datetime | None
    next_full_sync_allowed_at: datetime | None = Field(
        description="Before this, a full sync only adds serials not yet known (null: allowed now)."
    )
    next_sync_at: datetime | None = Field(description="When `pippin serve` runs the next scheduled sync.")
    running: bool
    window_reopens_at: datetime | None = Field(description="While a sync runs, when Sync is possible again.")
    cursor_kind: CursorKind | None = Field(description="fetch (a full read in progress), sync, or null (none yet).")
