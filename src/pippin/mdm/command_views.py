"""A queued command as listings show it: its status, times, ErrorChain and parsed answer, never its secrets.

The API and the CLI turn a :class:`CommandView` into their own shapes; neither the sealed command (an InstallProfile
payload, a ClearPasscode's UnlockToken) nor an answer's secrets (``mdm/command_answers.py``) reach it.
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.parsers.expat import ExpatError

from pippin.crypto.secrets import SecretBox
from pippin.mdm.command_answers import listed_response
from pippin.store.models import Command, CommandStatus


@dataclass(frozen=True)
class CommandView:
    """One command of one device, as listed."""

    command_uuid: str
    request_type: str
    status: CommandStatus
    priority: int
    created_at: datetime
    sent_at: datetime | None
    answered_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime
    #: Apple's Status of the last answer (``Acknowledged``, ``Error``, ``CommandFormatError``, ``NotNow``).
    report_status: str | None
    error_chain: list[dict[str, Any]] | None
    #: The answer's own keys, secrets replaced (``None``: no answer, or an answer with nothing but its status).
    response: dict[str, Any] | None
    deliveries: int
    not_now_count: int
    actor: str | None
    bulk_id: str | None


def _response(command: Command, box: SecretBox) -> dict[str, Any] | None:
    if command.answer_encrypted is None:
        return None
    try:
        report = plistlib.loads(box.decrypt(command.answer_encrypted), fmt=plistlib.FMT_XML)
    except (ExpatError, ValueError, TypeError):  # stored only after it was read once; never expected
        return None
    return listed_response(report) if isinstance(report, dict) else None


def command_view(command: Command, *, box: SecretBox) -> CommandView:
    return CommandView(
        command_uuid=command.command_uuid,
        request_type=command.request_type,
        status=command.status,
        priority=command.priority,
        created_at=command.created_at,
        sent_at=command.sent_at,
        answered_at=command.answered_at,
        finished_at=command.finished_at,
        expires_at=command.expires_at,
        report_status=command.report_status,
        error_chain=command.error_chain,
        response=_response(command, box),
        deliveries=command.deliveries,
        not_now_count=command.not_now_count,
        actor=command.actor,
        bulk_id=command.bulk_id,
    )
