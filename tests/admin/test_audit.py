"""The audit log service and `pippin audit list --json`: recorded in the caller's transaction, newest first."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from pippin.admin import audit as audit_service
from pippin.admin.audit import Actor, AuditAction, Interface
from pippin.cli.main import app
from pippin.errors import InvalidInput
from pippin.store.db import SessionFactory, create_db_engine, create_session_factory, transaction
from pippin.store.models import utcnow

AUDIT_KEYS = {"id", "at", "actor", "interface", "action", "target", "source", "detail"}


def test_events_are_listed_newest_first_and_page_by_id(session: Session) -> None:
    start = utcnow()
    for index in range(5):
        audit_service.record_event(
            session,
            actor=Actor("ann@example.com", Interface.console, "127.0.0.1"),
            action=AuditAction.dep_sync_start,
            target=f"token-{index}",
            now=start + timedelta(seconds=index),
        )
    first = audit_service.list_events(session, limit=3)
    assert [event.target for event in first] == ["token-4", "token-3", "token-2"]
    rest = audit_service.list_events(session, limit=3, before_id=first[-1].id)
    assert [event.target for event in rest] == ["token-1", "token-0"]
    assert audit_service.list_events(session, actor="ANN@example.com", limit=10)[0].actor == "ann@example.com"
    assert audit_service.list_events(session, actor="bob@example.com") == []


def test_details_keep_scalars_and_clip_everything_else(session: Session) -> None:
    audit_service.record_event(
        session,
        actor=Actor("x" * 1000, Interface.api),
        action=AuditAction.dep_token_upload,
        target="t" * 500,
        detail={"full": True, "count": 3, "blob": "b" * 10_000, "nested": {"a": [1, 2]}},
    )
    (event,) = audit_service.list_events(session)
    assert len(event.actor) == 320 and event.target is not None and len(event.target) == 200
    assert event.detail["full"] is True and event.detail["count"] == 3
    assert len(event.detail["blob"]) == 200 and isinstance(event.detail["nested"], str)


def test_an_event_rolls_back_with_the_change_it_describes(session_factory: SessionFactory) -> None:
    with pytest.raises(RuntimeError), transaction(session_factory) as session:
        audit_service.record_event(session, actor=Actor("ann", Interface.cli), action=AuditAction.profile_create)
        raise RuntimeError("the change failed")
    with transaction(session_factory) as session:
        assert audit_service.list_events(session) == []


@pytest.mark.parametrize("limit", [0, audit_service.MAX_LIST + 1])
def test_limits_outside_the_range_are_refused(session: Session, limit: int) -> None:
    with pytest.raises(InvalidInput):
        audit_service.list_events(session, limit=limit)


def test_cli_exports_the_log_as_json(tmp_path: Path, sqlite_template: Path) -> None:
    path = tmp_path / "pippin.db"
    shutil.copy(sqlite_template, path)
    env = {"PIPPIN_DATA_DIR": str(tmp_path / "data"), "PIPPIN_DATABASE_URL": f"sqlite:///{path}"}
    runner = CliRunner()
    assert json.loads(runner.invoke(app, ["audit", "list", "--json"], env=env).stdout) == []
    engine = create_db_engine(env["PIPPIN_DATABASE_URL"])
    try:
        with transaction(create_session_factory(engine)) as session:
            audit_service.record_event(
                session, actor=Actor("ci", Interface.api), action=AuditAction.dep_sync_start, target="acme"
            )
    finally:
        engine.dispose()
    result = runner.invoke(app, ["audit", "list", "--json"], env=env)
    assert result.exit_code == 0, result.output
    (event,) = json.loads(result.stdout)
    assert set(event) == AUDIT_KEYS and event["action"] == "dep.sync.start" and event["interface"] == "api"
    table = runner.invoke(app, ["audit", "list"], env={**env, "COLUMNS": "200"})
    assert "dep.sync.start" in table.output and "acme" in table.output
