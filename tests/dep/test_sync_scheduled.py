"""Scheduled syncs: which tokens are due, that each runs once per interval, and that the thread stops cleanly."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep.scheduled import dep_jobs, due_token_names, run_due_syncs
from pippin.dep.wire import DevicePage
from pippin.jobs.periodic import JobRunner
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import DEPToken, SyncRun

NOW = datetime.now(UTC)


class QuietApple:
    def __init__(self) -> None:
        self.calls = 0

    def fetch_devices(self, *, cursor: str | None = None, limit: int | None = None) -> DevicePage:
        self.calls += 1
        return DevicePage.model_validate({"devices": [{"serial_number": f"S{self.calls}"}], "cursor": "f"})

    def sync_devices(self, *, cursor: str, limit: int | None = None) -> DevicePage:
        self.calls += 1
        return DevicePage.model_validate({"devices": [], "cursor": "s"})

    def close(self) -> None:
        pass


def add_tokens(session_factory: SessionFactory) -> None:
    sealed = b"sealed"
    with transaction(session_factory) as session:
        session.add_all(
            [
                DEPToken(name="due", status="ok", credentials_encrypted=sealed),
                DEPToken(name="due-later", status="ok", credentials_encrypted=sealed, next_sync_at=NOW - timedelta(1)),
                DEPToken(name="not-yet", status="ok", credentials_encrypted=sealed, next_sync_at=NOW + timedelta(1)),
                DEPToken(name="expired", status="ok", credentials_encrypted=sealed, expires_at=NOW - timedelta(1)),
                DEPToken(name="refused", status="terms_not_signed", credentials_encrypted=sealed),
                DEPToken(name="awaiting", status="awaiting_token"),
                DEPToken(
                    name="syncing", status="ok", credentials_encrypted=sealed, sync_window_until=NOW + timedelta(1)
                ),
            ]
        )


def test_only_tokens_in_good_standing_whose_sync_is_due_are_picked(session_factory: SessionFactory) -> None:
    add_tokens(session_factory)
    with transaction(session_factory) as session:
        assert set(due_token_names(session, now=NOW)) == {"due", "due-later"}


def test_due_tokens_sync_once_and_are_then_due_again_an_interval_later(
    session_factory: SessionFactory, settings: Settings
) -> None:
    add_tokens(session_factory)
    apple = QuietApple()
    runs = run_due_syncs(
        session_factory, settings=settings, box=SecretBox.from_settings(settings), open_client=lambda t: apple
    )
    assert sorted(run.token for run in runs) == ["due", "due-later"]
    assert {run.trigger for run in runs} == {"scheduled"} and {run.outcome for run in runs} == {"succeeded"}
    assert (
        run_due_syncs(
            session_factory, settings=settings, box=SecretBox.from_settings(settings), open_client=lambda t: apple
        )
        == []
    )
    later = NOW + timedelta(days=1)
    with transaction(session_factory) as session:
        assert set(due_token_names(session, now=later)) == {"due", "due-later", "not-yet", "syncing"}


def test_the_sync_job_syncs_due_tokens_on_its_thread_and_stops_when_asked(
    session_factory: SessionFactory, settings: Settings
) -> None:
    add_tokens(session_factory)
    apple = QuietApple()
    box = SecretBox.from_settings(settings)
    jobs = dep_jobs(session_factory, settings=settings, box=box, open_client=lambda token: apple)
    names = [job.name for job in jobs]
    assert names == ["dep.recheck_refused_tokens", "dep.sync_due_tokens", "dep.send_due_assignments"]
    runner = JobRunner([job for job in jobs if job.name == "dep.sync_due_tokens"], clock=lambda: NOW)
    with runner:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with transaction(session_factory) as session:
                # Both runs finished, not merely started: stopping mid-run would end one `timed_out`.
                if session.scalars(select(SyncRun.outcome)).all().count("succeeded") == 2:
                    break
            time.sleep(0.05)
    assert not runner.is_running()
    assert runner.status["dep.sync_due_tokens"].failures == 0
    with transaction(session_factory) as session:
        assert sorted(session.scalars(select(SyncRun.outcome)).all()) == ["succeeded", "succeeded"]
