"""One change an admin made, from the console, the API or the CLI: who, what, when and from where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    """An append-only record; nothing in Pippin updates or deletes these rows."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The admin's e-mail (console), the API token's name (api) or the operating-system user (cli).
    actor: Mapped[str] = mapped_column(String(320))
    interface: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    # The client address (console, api) or the host name (cli).
    source: Mapped[str | None] = mapped_column(String(255))
    # A few non-secret facts about the change (e.g. the role given, "full": true); never passwords or tokens.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
