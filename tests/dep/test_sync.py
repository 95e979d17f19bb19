"""The sync engine against Apple-shaped answers: protocol, healing, windows, faults (reference sections 6, 8)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from pippin.config import Settings
from pippin.dep import sync as sync_module
from pippin.dep.errors import CursorExhausted, CursorExpired, DEPUnavailable, TermsNotSigned
from pippin.dep.sync import SyncProgress, run_sync, start_sync, sync_now
from pippin.dep.sync_runs import SyncWindowClosed, list_sync_runs, sync_health
from pippin.dep.wire import DevicePage
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import DEPToken, Device, SyncRun
from tests.clocks import Clock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


Step = tuple[str, str | None, DevicePage | Exception]


class ScriptedApple:
    """Answers fetch and sync calls from a script, checking that each call asks for the expected cursor."""

    def __init__(self, script: list[Step]) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, str | None, int | None]] = []
        self.closed = False

    def _answer(self, method: str, cursor: str | None, limit: int | None) -> DevicePage:
        self.calls.append((method, cursor, limit))
        assert self.script, f"unexpected {method} call with cursor {cursor!r}"
        expected_method, expected_cursor, answer = self.script.pop(0)
        assert (method, cursor) == (expected_method, expected_cursor)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def fetch_devices(self, *, cursor: str | None = None, limit: int | None = None) -> DevicePage:
        return self._answer("fetch", cursor, limit)

    def sync_devices(self, *, cursor: str, limit: int | None = None) -> DevicePage:
        return self._answer("sync", cursor, limit)

    def close(self) -> None:
        self.closed = True


def dev(serial: str, **fields: Any) -> dict[str, Any]:
    return {"serial_number": serial, "model": "iPad Air", "os": "iPadOS", "device_family": "iPad", **fields}


def page(cursor: str, *records: dict[str, Any], more: bool = False) -> DevicePage:
    return DevicePage.model_validate({"devices": list(records), "cursor": cursor, "more_to_follow": more})


def op(serial: str, op_type: str, minute: int, **fields: Any) -> dict[str, Any]:
    stamp = f"2026-03-02T08:{minute:02d}:00Z"
    if op_type == "deleted":
        return {"serial_number": serial, "op_type": "deleted", "op_date": stamp}
    return dev(serial, op_type=op_type, op_date=stamp, **fields)


@pytest.fixture
def token_name(session_factory: SessionFactory) -> str:
    with transaction(session_factory) as session:
        session.add(DEPToken(name="acme", status="ok", credentials_encrypted=b"sealed", fetch_limit=500))
    return "acme"


def run(
    session_factory: SessionFactory,
    settings: Settings,
    apple: ScriptedApple,
    *,
    full: bool = False,
    clock: Clock | None = None,
    progress: list[SyncProgress] | None = None,
) -> Any:
    return sync_now(
        session_factory,
        token_name="acme",
        settings=settings,
        open_dep_client=lambda token: apple,
        full=full,
        clock=clock or Clock(T0),
        progress=None if progress is None else progress.append,
    )


def start_sync_committed(session_factory: SessionFactory, **kwargs: Any) -> Any:
    with transaction(session_factory) as session:
        return start_sync(session, **kwargs)


def inventory(session_factory: SessionFactory) -> dict[str, str]:
    with transaction(session_factory) as session:
        return {d.serial_number: d.apple_status for d in session.scalars(select(Device))}


def token_row(session_factory: SessionFactory) -> DEPToken:
    with transaction(session_factory) as session:
        return session.scalars(select(DEPToken).where(DEPToken.name == "acme")).one()


def first_sync(session_factory: SessionFactory, settings: Settings, clock: Clock | None = None) -> None:
    apple = ScriptedApple(
        [
            ("fetch", None, page("f1", dev("A"), dev("B"), more=True)),
            ("fetch", "f1", page("f2", dev("C"))),
            ("sync", "f2", page("s1")),
        ]
    )
    assert run(session_factory, settings, apple, clock=clock).outcome == "succeeded"


def test_the_first_sync_fetches_everything_then_switches_to_the_change_log(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    apple = ScriptedApple(
        [
            ("fetch", None, page("f1", dev("A"), dev("B"), more=True)),
            ("fetch", "f1", page("f2", dev("C"))),
            ("sync", "f2", page("s1")),
        ]
    )
    progress: list[SyncProgress] = []
    result = run(session_factory, settings, apple, progress=progress)
    assert result.outcome == "succeeded" and result.kind == "full"
    assert (result.pages, result.added, result.modified, result.removed) == (3, 3, 0, 0)
    assert inventory(session_factory) == {"A": "assigned", "B": "assigned", "C": "assigned"}
    token = token_row(session_factory)
    assert (token.cursor, token.cursor_kind, token.last_full_sync_at) == ("s1", "sync", T0)
    assert token.sync_window_until == T0 and token.next_sync_at == T0 + settings.dep_sync_interval
    assert [call[2] for call in apple.calls] == [500, 500, 1000]  # the advertised fetch limit, else 1000
    assert [p.devices for p in progress] == [2, 3, 3] and apple.closed


def test_an_incremental_sync_applies_changes_from_the_stored_cursor(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    first_sync(session_factory, settings)
    apple = ScriptedApple(
        [
            ("sync", "s1", page("s2", op("D", "added", 1), op("A", "modified", 2, color="RED"), more=True)),
            ("sync", "s2", page("s3", op("B", "deleted", 3), op("Z", "modified", 4))),
        ]
    )
    result = run(session_factory, settings, apple, clock=Clock(T0 + timedelta(minutes=30)))
    assert result.kind == "incremental"
    assert (result.added, result.modified, result.removed) == (2, 1, 1)
    assert inventory(session_factory) == {
        "A": "assigned",
        "B": "removed",
        "C": "assigned",
        "D": "assigned",
        "Z": "assigned",
    }
    assert token_row(session_factory).cursor == "s3"


def test_a_full_sync_within_seven_days_only_adds_new_serials_and_keeps_the_change_log_cursor(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    first_sync(session_factory, settings)
    apple = ScriptedApple(
        [
            ("fetch", None, page("x1", dev("A", color="RED"), dev("NEW"), more=True)),
            ("fetch", "x1", page("x2")),  # B and C missing: within 7 days, nothing is marked removed
            ("sync", "s1", page("s2")),
        ]
    )
    result = run(session_factory, settings, apple, full=True, clock=Clock(T0 + timedelta(days=6)))
    assert result.kind == "full" and (result.added, result.modified, result.removed) == (1, 0, 0)
    assert inventory(session_factory) == dict.fromkeys(["A", "B", "C", "NEW"], "assigned")
    token = token_row(session_factory)
    assert token.cursor == "s2" and token.last_full_sync_at == T0
    with transaction(session_factory) as session:
        assert session.scalars(select(Device.color).where(Device.serial_number == "A")).one() is None


def test_a_full_sync_after_seven_days_refreshes_every_serial_and_marks_the_missing_removed(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    first_sync(session_factory, settings)
    later = T0 + settings.dep_full_sync_interval
    apple = ScriptedApple(
        [
            ("fetch", None, page("x1", dev("A", color="RED"), more=True)),
            ("fetch", "x1", page("x2", dev("C"))),
            ("sync", "x2", page("s9")),
        ]
    )
    result = run(session_factory, settings, apple, full=True, clock=Clock(later))
    assert (result.added, result.modified, result.removed, result.unchanged) == (0, 1, 1, 1)
    assert inventory(session_factory) == {"A": "assigned", "B": "removed", "C": "assigned"}
    assert token_row(session_factory).last_full_sync_at == later


def test_exhausted_fetch_cursor_switches_to_sync_with_the_same_cursor(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    with transaction(session_factory) as session:
        token = session.scalars(select(DEPToken)).one()
        token.cursor, token.cursor_kind = "f9", "fetch"
    apple = ScriptedApple(
        [
            ("fetch", "f9", CursorExhausted(apple_code="EXHAUSTED_CURSOR", status=400)),
            ("sync", "f9", page("s1", op("A", "added", 1))),
        ]
    )
    result = run(session_factory, settings, apple)
    assert result.outcome == "succeeded" and result.added == 1
    assert (token_row(session_factory).cursor, token_row(session_factory).cursor_kind) == ("s1", "sync")


def test_an_expired_cursor_heals_with_a_full_read_and_says_so(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    first_sync(session_factory, settings)
    apple = ScriptedApple(
        [
            ("sync", "s1", CursorExpired(apple_code="EXPIRED_CURSOR", status=400)),
            ("fetch", None, page("r1", dev("A"))),
            ("sync", "r1", page("s2")),
        ]
    )
    result = run(session_factory, settings, apple, clock=Clock(T0 + timedelta(days=1)))
    assert result.outcome == "succeeded" and result.kind == "full"
    assert result.warning is not None and "EXPIRED_CURSOR" in result.warning
    assert inventory(session_factory) == {"A": "assigned", "B": "removed", "C": "removed"}


def test_a_repeated_cursor_stops_the_run_with_a_warning_and_the_next_run_continues(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    first_sync(session_factory, settings)
    apple = ScriptedApple([("sync", "s1", page("s1", op("D", "added", 1), more=True))])
    result = run(session_factory, settings, apple, clock=Clock(T0 + timedelta(minutes=1)))
    assert result.outcome == "succeeded" and result.warning is not None and "same cursor" in result.warning
    assert "D" in inventory(session_factory)
    apple = ScriptedApple([("sync", "s1", page("s2"))])
    assert run(session_factory, settings, apple, clock=Clock(T0 + timedelta(minutes=2))).warning is None


def test_a_second_sync_is_refused_while_the_window_is_open_and_allowed_once_the_first_finished(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    started = start_sync_committed(session_factory, token_name="acme", settings=settings, now=T0)
    with pytest.raises(SyncWindowClosed) as refused:
        start_sync_committed(session_factory, token_name="acme", settings=settings, now=T0 + timedelta(minutes=3))
    assert refused.value.retry_at == T0 + settings.dep_sync_window
    assert refused.value.retry_after_seconds(now=T0 + timedelta(minutes=3)) == 7 * 60
    with transaction(session_factory) as session:
        assert len(session.scalars(select(SyncRun)).all()) == 1  # the refused attempt left nothing behind
    apple = ScriptedApple([("fetch", None, page("f1")), ("sync", "f1", page("s1"))])
    run_sync(session_factory, run_id=started.id, settings=settings, open_dep_client=lambda t: apple, clock=Clock(T0))
    start_sync_committed(session_factory, token_name="acme", settings=settings, now=T0 + timedelta(minutes=4))


def test_a_dead_syncs_window_reopens_when_it_ends_and_its_run_is_marked_abandoned(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    dead = start_sync_committed(session_factory, token_name="acme", settings=settings, now=T0)
    start_sync_committed(session_factory, token_name="acme", settings=settings, now=T0 + settings.dep_sync_window)
    with transaction(session_factory) as session:
        runs = list_sync_runs(session, token_name="acme")
    assert [(r.id, r.outcome, r.error_code) for r in runs][1] == (dead.id, "failed", "abandoned")


def test_exactly_one_of_two_simultaneous_syncs_runs(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    barrier = threading.Barrier(2)
    refused = threading.Event()
    outcomes: list[str] = []

    class SlowApple(ScriptedApple):
        def fetch_devices(self, *, cursor: str | None = None, limit: int | None = None) -> DevicePage:
            refused.wait(timeout=20)  # Apple is slow: the winner is still syncing when the other one asks
            return super().fetch_devices(cursor=cursor, limit=limit)

    def contender() -> None:
        apple = SlowApple([("fetch", None, page("f1", dev("A"))), ("sync", "f1", page("s1"))])
        barrier.wait()
        try:
            outcomes.append(run(session_factory, settings, apple).outcome)
        except SyncWindowClosed:
            outcomes.append("refused")
            refused.set()

    threads = [threading.Thread(target=contender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["refused", "succeeded"]
    assert inventory(session_factory) == {"A": "assigned"}


def test_a_sync_at_its_windows_end_stops_after_the_page_in_hand_and_the_next_resumes(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    clock = Clock(T0)

    def slow_progress(progress: SyncProgress) -> None:
        clock.now += settings.dep_sync_window  # the page took the whole window

    apple = ScriptedApple([("fetch", None, page("f1", dev("A"), more=True))])
    result = sync_now(
        session_factory,
        token_name="acme",
        settings=settings,
        open_dep_client=lambda token: apple,
        clock=clock,
        progress=slow_progress,
    )
    assert result.outcome == "timed_out" and result.pages == 1
    token = token_row(session_factory)
    assert (token.cursor, token.cursor_kind, token.next_sync_at) == ("f1", "fetch", clock.now)
    apple = ScriptedApple([("fetch", "f1", page("f2", dev("B"))), ("sync", "f2", page("s1"))])
    assert run(session_factory, settings, apple, clock=clock).outcome == "succeeded"
    assert inventory(session_factory) == {"A": "assigned", "B": "assigned"}


def test_an_auth_failure_fails_the_run_and_is_recorded_on_the_token(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    apple = ScriptedApple([("fetch", None, TermsNotSigned(apple_code="T_C_NOT_SIGNED", status=403))])
    result = run(session_factory, settings, apple)
    assert (result.outcome, result.error_code) == ("failed", "dep_terms_not_signed")
    token = token_row(session_factory)
    assert token.status == "terms_not_signed" and token.last_error is not None
    assert token.sync_window_until == T0  # released at once


def test_apple_unavailable_mid_sync_keeps_committed_pages_and_their_cursor(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    apple = ScriptedApple(
        [
            ("fetch", None, page("f1", dev("A"), more=True)),
            ("fetch", "f1", DEPUnavailable(status=503)),
        ]
    )
    result = run(session_factory, settings, apple)
    assert (result.outcome, result.error_code, result.pages) == ("failed", "dep_unavailable", 1)
    token = token_row(session_factory)
    assert (token.cursor, token.cursor_kind) == ("f1", "fetch")
    assert inventory(session_factory) == {"A": "assigned"}


def test_a_crash_between_applying_a_page_and_committing_it_loses_nothing(
    session_factory: SessionFactory, settings: Settings, token_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_apply = sync_module.apply_device_page
    calls = {"n": 0}

    def apply_then_die(*args: Any, **kwargs: Any) -> Any:
        counts = real_apply(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("process killed")
        return counts

    monkeypatch.setattr(sync_module, "apply_device_page", apply_then_die)
    apple = ScriptedApple(
        [("fetch", None, page("f1", dev("A"), more=True)), ("fetch", "f1", page("f2", dev("B"), more=True))]
    )
    with pytest.raises(RuntimeError, match="process killed"):
        run(session_factory, settings, apple)
    assert inventory(session_factory) == {"A": "assigned"}
    assert token_row(session_factory).cursor == "f1"
    monkeypatch.setattr(sync_module, "apply_device_page", real_apply)
    apple = ScriptedApple(
        [("fetch", "f1", page("f2", dev("B"), more=True)), ("fetch", "f2", page("f3")), ("sync", "f3", page("s1"))]
    )
    assert run(session_factory, settings, apple).outcome == "succeeded"
    assert inventory(session_factory) == {"A": "assigned", "B": "assigned"}
    with transaction(session_factory) as session:
        runs = list_sync_runs(session, token_name="acme")
    assert [r.error_code for r in runs] == [None, "internal_error"]


def test_sync_health_shows_the_last_run_and_the_next_allowed_full_sync(
    session_factory: SessionFactory, settings: Settings, token_name: str
) -> None:
    first_sync(session_factory, settings)
    with transaction(session_factory) as session:
        token = session.scalars(select(DEPToken)).one()
        health = sync_health(session, token=token, settings=settings, now=T0 + timedelta(hours=1))
    assert health.last_run is not None and health.last_run.outcome == "succeeded"
    assert health.next_full_sync_allowed_at == T0 + settings.dep_full_sync_interval
    assert health.next_sync_at == T0 + settings.dep_sync_interval
    assert not health.running and health.window_reopens_at is None and health.cursor_kind == "sync"


def test_a_token_without_a_server_token_cannot_sync(session_factory: SessionFactory, settings: Settings) -> None:
    with transaction(session_factory) as session:
        session.add(DEPToken(name="bare"))
    with pytest.raises(Exception, match="no server token"):
        start_sync_committed(session_factory, token_name="bare", settings=settings)
