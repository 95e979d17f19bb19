"""One DEP sync of one token: when, what kind, how it ended and what it changed."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, enum_column, utcnow


class SyncKind(StrEnum):
    full = "full"
    incremental = "incremental"


class SyncOutcome(StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    # The sync window ended before Apple had nothing more to send; the next run resumes from the cursor.
    timed_out = "timed_out"


class SyncTrigger(StrEnum):
    """Who started a run: an admin from the CLI or the console (``manual``), the REST API, or the scheduler."""

    manual = "manual"
    api = "api"
    console = "console"
    scheduled = "scheduled"


class SyncRun(Base):
    """The record that makes a sync's health visible: start, end, outcome, error and counts."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_token_started", "token_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("dep_tokens.id", ondelete="CASCADE"))
    kind: Mapped[SyncKind] = mapped_column(enum_column(SyncKind, length=16))
    trigger: Mapped[SyncTrigger] = mapped_column(enum_column(SyncTrigger, length=16), default=SyncTrigger.manual)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    window_ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[SyncOutcome] = mapped_column(enum_column(SyncOutcome, length=16), default=SyncOutcome.running)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    modified: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
