"""`pippin commands prune [--dry-run] [--json]`: one pass of the queue's upkeep now, and what it changed (or would);
translation only, on SQLite and PostgreSQL (the service's own tests are ``tests/mdm/test_command_upkeep.py``)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from pippin.config import Settings
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import Command, CommandStatus, utcnow
from tests.cli.conftest import Pippin
from tests.mdm.command_fleet import enrolled_device


@pytest.fixture
def history(session_factory: SessionFactory, settings: Settings) -> None:
    """An old finished command, a waiting one past its expiry, and one still in time (the CLI runs on the real
    clock: every moment here is days away from it)."""
    now = utcnow()
    old = now - settings.command_retention - timedelta(days=1)
    with transaction(session_factory) as session:
        udid = enrolled_device(session, "C01")
        base = {
            "udid": udid, "request_type": "DeviceInformation", "priority": 0, "created_at": old,
            "body_encrypted": b"sealed", "deliveries": 0, "not_now_count": 0,
        }  # fmt: skip
        session.execute(
            insert(Command),
            [
                {
                    **base,
                    "command_uuid": "old",
                    "status": CommandStatus.acknowledged,
                    "expires_at": old,
                    "finished_at": old,
                },
                {**base, "command_uuid": "late", "status": CommandStatus.queued, "expires_at": now - timedelta(days=1)},
                {
                    **base,
                    "command_uuid": "fresh",
                    "status": CommandStatus.queued,
                    "expires_at": now + timedelta(days=1),
                },
            ],
        )


def _left(session_factory: SessionFactory) -> dict[str, CommandStatus]:
    with read_transaction(session_factory) as session:
        return {c.command_uuid: c.status for c in session.scalars(select(Command))}


def test_a_dry_run_counts_and_changes_nothing(pippin: Pippin, history: None, session_factory: SessionFactory) -> None:
    result = pippin("commands", "prune", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"expired": 1, "pruned": 1, "dry_run": True}
    assert _left(session_factory) == {
        "old": CommandStatus.acknowledged, "late": CommandStatus.queued, "fresh": CommandStatus.queued,
    }  # fmt: skip
    text = pippin("commands", "prune", "--dry-run")
    assert "Would expire 1 waiting commands and delete 1 finished commands" in text.stdout
    assert "30 days" in text.stdout and "nothing was changed" in text.stdout


def test_a_pass_expires_then_prunes_and_says_what_it_removed(
    pippin: Pippin, history: None, session_factory: SessionFactory
) -> None:
    result = pippin("commands", "prune")
    assert result.exit_code == 0, result.output
    assert "Expired 1 waiting commands; deleted 1 finished commands" in result.stdout
    assert _left(session_factory) == {"late": CommandStatus.expired, "fresh": CommandStatus.queued}
    again = pippin("commands", "prune", "--json")
    assert json.loads(again.stdout) == {"expired": 0, "pruned": 0, "dry_run": False}


@pytest.mark.parametrize(
    "args", [("--dry-run=maybe",), ("--dry-run", "yes"), ("--json=1",), ("--limit", "5"), ("--dry-run\x00",)]
)
def test_hostile_flags_are_refused_clearly_and_change_nothing(
    pippin: Pippin, history: None, session_factory: SessionFactory, args: tuple[str, ...]
) -> None:
    result = pippin("commands", "prune", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert len(_left(session_factory)) == 3
