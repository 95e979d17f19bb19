"""The sync window claim: one conditional UPDATE decides, on both databases, even under real concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from pippin.store.db import SessionFactory, transaction
from pippin.store.locks import claim_sync_window, hold_sync_window, release_sync_window
from pippin.store.models import DEPToken

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def _token(session_factory: SessionFactory) -> int:
    with transaction(session_factory) as session:
        token = DEPToken(name="acme")
        session.add(token)
        session.flush()
        return token.id


def _claim(session_factory: SessionFactory, token_id: int, run_id: int, now: datetime) -> bool:
    with transaction(session_factory) as session:
        return claim_sync_window(session, token_id=token_id, run_id=run_id, until=now + WINDOW, now=now)


def test_a_free_window_is_claimed_and_then_refused_until_it_ends(session_factory: SessionFactory) -> None:
    token_id = _token(session_factory)
    assert _claim(session_factory, token_id, 1, NOW)
    assert not _claim(session_factory, token_id, 2, NOW + timedelta(minutes=9, seconds=59))
    assert _claim(session_factory, token_id, 3, NOW + WINDOW)
    with transaction(session_factory) as session:
        token = session.scalars(select(DEPToken)).one()
        assert token.sync_window_run_id == 3
        assert token.sync_window_until == NOW + 2 * WINDOW


def test_releasing_reopens_the_window_at_once_but_only_for_its_owner(session_factory: SessionFactory) -> None:
    token_id = _token(session_factory)
    assert _claim(session_factory, token_id, 1, NOW)
    with transaction(session_factory) as session:
        assert not release_sync_window(session, token_id=token_id, run_id=99, now=NOW)
    assert not _claim(session_factory, token_id, 2, NOW + timedelta(seconds=1))
    with transaction(session_factory) as session:
        assert release_sync_window(session, token_id=token_id, run_id=1, now=NOW + timedelta(seconds=2))
    assert _claim(session_factory, token_id, 2, NOW + timedelta(seconds=2))


def test_holding_fails_once_another_run_took_the_window(session_factory: SessionFactory) -> None:
    token_id = _token(session_factory)
    assert _claim(session_factory, token_id, 1, NOW)
    with transaction(session_factory) as session:
        assert hold_sync_window(session, token_id=token_id, run_id=1)
    assert _claim(session_factory, token_id, 2, NOW + WINDOW)
    with transaction(session_factory) as session:
        assert not hold_sync_window(session, token_id=token_id, run_id=1)
        assert hold_sync_window(session, token_id=token_id, run_id=2)


def test_simultaneous_claims_from_many_threads_let_exactly_one_win(session_factory: SessionFactory) -> None:
    token_id = _token(session_factory)
    contenders = 8
    barrier = threading.Barrier(contenders)
    wins: list[int] = []
    errors: list[BaseException] = []

    def contend(run_id: int) -> None:
        try:
            barrier.wait()
            if _claim(session_factory, token_id, run_id, NOW):
                wins.append(run_id)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(run_id,)) for run_id in range(1, contenders + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(wins) == 1
    with transaction(session_factory) as session:
        assert session.scalars(select(DEPToken.sync_window_run_id)).one() == wins[0]
