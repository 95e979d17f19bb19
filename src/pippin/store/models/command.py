"""One MDM command for one enrollment: waiting in its queue, then its answer, until it is pruned.

Reference ``apple-mdm-protocol.md`` section 3. A command is Apple's ``Command`` dictionary (``RequestType`` and its
arguments) under a ``CommandUUID``; the device fetches it at the ServerURL and answers it there. The dictionary is
sealed (an InstallProfile payload may carry Wi-Fi passwords, a ClearPasscode the UnlockToken), and so is the raw
answer (a bypass code, a certificate list), beside the few parsed fields Pippin filters on.

The table holds the queue and its history together, so the next-command query reads only a partial index of the
*waiting* commands (``ix_commands_next``): however many finished commands the table holds, a device's next command
costs the same. Finished commands are pruned after ``PIPPIN_COMMAND_RETENTION``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base, UTCDateTime, enum_column


class CommandStatus(StrEnum):
    """Where one command stands (the values are what the API and ``--json`` show)."""

    #: Waiting for the device to fetch it.
    queued = "queued"
    #: Handed to the device, no answer yet; handed again at its next Idle if the answer never comes.
    sent = "sent"
    #: The device ran it (``Acknowledged``).
    acknowledged = "acknowledged"
    #: The device refused or failed it (``Error`` with its ErrorChain, or ``CommandFormatError``).
    error = "error"
    #: The device was busy (``NotNow``): it waits and is handed again at the device's next connection.
    not_now = "not_now"
    #: It waited longer than its expiry without being answered.
    expired = "expired"
    #: An admin canceled it before the device answered.
    canceled = "canceled"


#: The statuses of a command that still waits for the device. Written as SQL text, not bound parameters, in the
#: partial indexes and in the queries that must use them: neither SQLite nor PostgreSQL (with a generic plan) can
#: prove that ``status IN (?, ?, ?)`` implies an index's predicate.
WAITING = (CommandStatus.queued, CommandStatus.sent, CommandStatus.not_now)
WAITING_SQL = "status IN ('queued', 'sent', 'not_now')"


def waiting_clause() -> Any:
    """The SQL predicate of a waiting command, as the partial indexes are defined (see :data:`WAITING_SQL`)."""
    return text(WAITING_SQL)


class Command(Base):
    """One command queued for one enrollment, and its answer."""

    __tablename__ = "commands"
    __table_args__ = (
        # The next command of a device: its waiting commands only (a handful, read in priority order and sorted
        # there; a descending key would be an expression index, which Alembic cannot compare on SQLite).
        Index(
            "ix_commands_next",
            "udid",
            "priority",
            "id",
            sqlite_where=text(WAITING_SQL),
            postgresql_where=text(WAITING_SQL),
        ),
        # The expiry job: waiting commands in order of expiry, without the history.
        Index(
            "ix_commands_waiting_expiry",
            "expires_at",
            sqlite_where=text(WAITING_SQL),
            postgresql_where=text(WAITING_SQL),
        ),
        # A device's history, newest first (the listing's keyset), and the enrollment's cascade.
        Index("ix_commands_udid_id", "udid", "id"),
        # The pruning job: finished commands in order of their end.
        Index("ix_commands_finished_at", "finished_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: Apple's CommandUUID: unique across the server, so the same UUID queued twice is one command.
    command_uuid: Mapped[str] = mapped_column(String(64), unique=True)
    udid: Mapped[str] = mapped_column(ForeignKey("enrollments.udid", ondelete="CASCADE"))
    request_type: Mapped[str] = mapped_column(String(64))
    #: Higher first; equal priorities in the order they were queued.
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[CommandStatus] = mapped_column(enum_column(CommandStatus, length=16))

    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When the device last fetched it (a command handed again moves it on).
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the device last answered it (a NotNow counts).
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When it stopped waiting (answered for good, expired or canceled); pruning counts from here.
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    #: The sealed XML plist of Apple's ``Command`` dictionary (without the CommandUUID).
    body_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    #: The sealed raw answer, as the device sent it (the last one: a NotNow, then the final answer).
    answer_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Apple's ``Status`` of the last answer as sent (``Acknowledged``, ``Error``, ``CommandFormatError``, ``NotNow``).
    report_status: Mapped[str | None] = mapped_column(String(32))
    #: The ErrorChain of an ``Error`` answer (codes, domains, descriptions: no secrets), bounded.
    error_chain: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    #: Times handed to the device, and times it answered NotNow.
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    not_now_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Who queued it (an admin, an API token, Pippin itself), and the bulk request it belongs to.
    actor: Mapped[str | None] = mapped_column(String(320))
    bulk_id: Mapped[str | None] = mapped_column(String(36))
