"""The command queue's upkeep: expiry marks only waiting commands past their expiry, pruning deletes only finished
commands past the retention, both in bounded batches each committed on its own, through their indexes. On SQLite
and PostgreSQL, with an injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.errors import InvalidInput
from pippin.mdm.command_upkeep import (
    count_upkeep,
    expire_commands,
    expiry_batch_query,
    prune_batch_query,
    prune_commands,
    run_upkeep,
)
from pippin.server.jobs import periodic_jobs
from pippin.server.resources import build_resources
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import Command, CommandStatus
from tests.clocks import Clock
from tests.push.conftest import T0, enroll, udid_of

DAY = timedelta(days=1)


def row(
    name: str, status: CommandStatus, *, expires_at: datetime, finished_at: datetime | None, udid: int = 0
) -> dict[str, Any]:
    return {
        "command_uuid": name,
        "udid": udid_of(udid),
        "request_type": "DeviceInformation",
        "priority": 0,
        "status": status,
        "created_at": T0 - 60 * DAY,
        "expires_at": expires_at,
        "finished_at": finished_at,
        "body_encrypted": b"sealed",
        "deliveries": 0,
        "not_now_count": 0,
    }


def add(session_factory: SessionFactory, rows: list[dict[str, Any]]) -> None:
    with transaction(session_factory) as session:
        session.execute(insert(Command), rows)


def statuses(session_factory: SessionFactory) -> dict[str, tuple[CommandStatus, datetime | None]]:
    with read_transaction(session_factory) as session:
        return {c.command_uuid: (c.status, c.finished_at) for c in session.scalars(select(Command))}


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def test_expiry_marks_only_the_waiting_commands_past_their_expiry(
    session_factory: SessionFactory, clock: Clock
) -> None:
    enroll(session_factory, 2)
    past, future = T0 - DAY, T0 + DAY
    add(
        session_factory,
        [
            row("queued-past", CommandStatus.queued, expires_at=past, finished_at=None),
            row("sent-past", CommandStatus.sent, expires_at=past, finished_at=None, udid=1),
            row("not-now-at", CommandStatus.not_now, expires_at=T0, finished_at=None),
            row("queued-future", CommandStatus.queued, expires_at=future, finished_at=None),
            row("acknowledged-past", CommandStatus.acknowledged, expires_at=past, finished_at=T0 - 2 * DAY),
            row("canceled-past", CommandStatus.canceled, expires_at=past, finished_at=T0 - 2 * DAY),
        ],
    )
    assert count_upkeep(session_factory, settings=Settings(), clock=clock).expired == 3
    assert expire_commands(session_factory, clock=clock) == 3
    assert statuses(session_factory) == {
        "queued-past": (CommandStatus.expired, T0),
        "sent-past": (CommandStatus.expired, T0),
        "not-now-at": (CommandStatus.expired, T0),
        "queued-future": (CommandStatus.queued, None),
        "acknowledged-past": (CommandStatus.acknowledged, T0 - 2 * DAY),
        "canceled-past": (CommandStatus.canceled, T0 - 2 * DAY),
    }
    assert expire_commands(session_factory, clock=clock) == 0  # a second run finds nothing more
    clock.advance(days=2)
    assert expire_commands(session_factory, clock=clock) == 1
    assert statuses(session_factory)["queued-future"] == (CommandStatus.expired, T0 + 2 * DAY)


def test_pruning_deletes_only_finished_commands_past_the_retention_and_never_a_waiting_one(
    session_factory: SessionFactory, settings: Settings, clock: Clock
) -> None:
    enroll(session_factory, 1)
    retention = settings.command_retention
    old, recent = T0 - retention - DAY, T0 - retention + DAY
    add(
        session_factory,
        [
            row(f"{status.value}-old", status, expires_at=old, finished_at=old)
            for status in (
                CommandStatus.acknowledged,
                CommandStatus.error,
                CommandStatus.expired,
                CommandStatus.canceled,
            )
        ]
        + [
            row("acknowledged-recent", CommandStatus.acknowledged, expires_at=old, finished_at=recent),
            row("queued-ancient", CommandStatus.queued, expires_at=T0 + DAY, finished_at=None),
            row("sent-ancient", CommandStatus.sent, expires_at=T0 + DAY, finished_at=None),
            row("not-now-ancient", CommandStatus.not_now, expires_at=T0 + DAY, finished_at=None),
        ],
    )
    assert count_upkeep(session_factory, settings=settings, clock=clock).pruned == 4
    assert prune_commands(session_factory, settings=settings, clock=clock) == 4
    assert sorted(statuses(session_factory)) == [
        "acknowledged-recent", "not-now-ancient", "queued-ancient", "sent-ancient",
    ]  # fmt: skip
    clock.advance(days=2)
    assert prune_commands(session_factory, settings=settings, clock=clock) == 1
    assert sorted(statuses(session_factory)) == ["not-now-ancient", "queued-ancient", "sent-ancient"]


class CountingFactory:
    """The session factory, counting the transactions opened, and failing the ``crash_at``-th (a crash between
    two batches: every batch before it committed, none after it begun)."""

    def __init__(self, factory: SessionFactory, crash_at: int | None = None) -> None:
        self.factory = factory
        self.crash_at = crash_at
        self.opened = 0

    def __call__(self) -> Session:
        self.opened += 1
        if self.opened == self.crash_at:
            raise ConnectionError("the process died between two batches")
        return self.factory()


def test_expiry_runs_in_bounded_batches_each_committed_so_a_crash_between_them_loses_nothing(
    session_factory: SessionFactory, clock: Clock
) -> None:
    enroll(session_factory, 1)
    add(
        session_factory,
        [
            row(f"c{i:02d}", CommandStatus.queued, expires_at=T0 - timedelta(minutes=i), finished_at=None)
            for i in range(10)
        ],
    )
    crashing = CountingFactory(session_factory, crash_at=3)
    with pytest.raises(ConnectionError):
        expire_commands(crashing, clock=clock, batch=3)  # type: ignore[arg-type]
    marked = [name for name, (status, _) in statuses(session_factory).items() if status is CommandStatus.expired]
    assert len(marked) == 6  # two batches of three, committed before the crash
    counting = CountingFactory(session_factory)
    assert expire_commands(counting, clock=clock, batch=3) == 4  # type: ignore[arg-type]
    assert counting.opened == 2  # three, then one: the batch short of full ends the run
    assert {status for status, _ in statuses(session_factory).values()} == {CommandStatus.expired}


def test_pruning_runs_in_bounded_batches_each_committed_so_a_crash_between_them_loses_nothing(
    session_factory: SessionFactory, settings: Settings, clock: Clock
) -> None:
    enroll(session_factory, 1)
    start = T0 - settings.command_retention - 30 * DAY
    # Several commands finishing at the same moment: a batch boundary may fall among them.
    add(
        session_factory,
        [
            row(f"c{i:02d}", CommandStatus.acknowledged, expires_at=start, finished_at=start + (i // 2) * DAY)
            for i in range(11)
        ]
        + [row("waiting", CommandStatus.queued, expires_at=T0 + DAY, finished_at=None)],
    )
    crashing = CountingFactory(session_factory, crash_at=3)
    with pytest.raises(ConnectionError):
        prune_commands(crashing, settings=settings, clock=clock, batch=4)  # type: ignore[arg-type]
    assert len(statuses(session_factory)) == 12 - 8
    stopping = iter([False, True])
    assert (
        prune_commands(session_factory, settings=settings, clock=clock, batch=2, should_stop=lambda: next(stopping))
        == 2
    )
    assert sorted(statuses(session_factory)) == ["c10", "waiting"]
    assert prune_commands(session_factory, settings=settings, clock=clock, batch=4) == 1
    assert sorted(statuses(session_factory)) == ["waiting"]


@pytest.mark.parametrize("batch", [0, -1, True, 10**9, 2.5])
def test_a_batch_size_out_of_range_is_refused_before_anything_changes(
    session_factory: SessionFactory, settings: Settings, clock: Clock, batch: Any
) -> None:
    enroll(session_factory, 1)
    add(session_factory, [row("q", CommandStatus.queued, expires_at=T0 - DAY, finished_at=None)])
    with pytest.raises(InvalidInput, match="1 to"):
        expire_commands(session_factory, clock=clock, batch=batch)
    with pytest.raises(InvalidInput, match="1 to"):
        prune_commands(session_factory, settings=settings, clock=clock, batch=batch)
    assert statuses(session_factory) == {"q": (CommandStatus.queued, None)}


def _plan(session: Session, engine: Engine, statement: Any) -> str:
    sql = str(statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    return "\n".join(str(line[-1]) for line in session.connection().exec_driver_sql(prefix + sql))


def test_each_batch_reads_its_own_index_not_the_table(engine: Engine, session_factory: SessionFactory) -> None:
    enroll(session_factory, 1)
    add(
        session_factory,
        [row(f"done-{i}", CommandStatus.acknowledged, expires_at=T0, finished_at=T0 - DAY) for i in range(2000)]
        + [row(f"wait-{i}", CommandStatus.queued, expires_at=T0 + DAY, finished_at=None) for i in range(3)],
    )
    with session_factory() as session:
        session.connection().exec_driver_sql("ANALYZE")
        if engine.dialect.name == "postgresql":  # a tiny table is cheaper to scan: ask which index the plan uses
            session.connection().exec_driver_sql("SET enable_seqscan = off")
        expiry = _plan(session, engine, expiry_batch_query(now=T0, batch=500))
        assert "ix_commands_waiting_expiry" in expiry, expiry
        prune = _plan(session, engine, prune_batch_query(cutoff=T0, after=T0 - 2 * DAY, batch=500))
        assert "ix_commands_finished_at" in prune, prune
        for plan in (expiry, prune):
            assert "SCAN commands" not in plan and "Seq Scan" not in plan, plan


def test_the_server_runs_both_upkeep_jobs_on_its_clock(
    engine: Engine, session_factory: SessionFactory, settings: Settings, clock: Clock
) -> None:
    runner = periodic_jobs(build_resources(settings, engine, clock=clock))  # before any sealed column is written
    enroll(session_factory, 1)
    add(session_factory, [row("q", CommandStatus.queued, expires_at=T0 + DAY, finished_at=None)])
    clock.advance(days=2)
    runner.run_once("commands.expire")
    assert statuses(session_factory) == {"q": (CommandStatus.expired, T0 + 2 * DAY)}
    runner.run_once("commands.prune_finished")
    assert statuses(session_factory) != {}  # finished just now: kept for the retention
    clock.now += settings.command_retention + DAY
    runner.run_once("commands.prune_finished")
    assert statuses(session_factory) == {}
    assert runner.status["commands.expire"].failures == runner.status["commands.prune_finished"].failures == 0


def test_one_pass_expires_then_prunes(session_factory: SessionFactory, settings: Settings, clock: Clock) -> None:
    enroll(session_factory, 1)
    old = T0 - settings.command_retention - DAY
    add(
        session_factory,
        [
            row("old", CommandStatus.error, expires_at=old, finished_at=old),
            row("late", CommandStatus.queued, expires_at=T0 - DAY, finished_at=None),
        ],
    )
    counts = run_upkeep(session_factory, settings=settings, clock=clock)
    assert (counts.expired, counts.pruned, counts.dry_run) == (1, 1, False)
    assert statuses(session_factory) == {"late": (CommandStatus.expired, T0)}


def test_a_command_answered_between_the_batch_read_and_its_write_is_left_alone(
    engine: Engine, session_factory: SessionFactory, clock: Clock
) -> None:
    enroll(session_factory, 1)
    add(
        session_factory,
        [
            row(f"c{i}", CommandStatus.sent, expires_at=T0 - timedelta(minutes=i + 1), finished_at=None)
            for i in range(3)
        ],
    )
    answered: list[str] = []

    def device_answers_first(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        # The device's answer lands after the batch was read and before it is written (the write re-checks).
        if statement.lstrip().upper().startswith("UPDATE COMMANDS") and not answered:
            answered.append("c0")
            cursor.execute(
                "UPDATE commands SET status = 'acknowledged', finished_at = answered_at WHERE command_uuid = 'c0'"
            )

    event.listen(engine, "before_cursor_execute", device_answers_first)
    try:
        assert expire_commands(session_factory, clock=clock) == 2
    finally:
        event.remove(engine, "before_cursor_execute", device_answers_first)
    assert answered == ["c0"]
    assert {name: status for name, (status, _) in statuses(session_factory).items()} == {
        "c0": CommandStatus.acknowledged, "c1": CommandStatus.expired, "c2": CommandStatus.expired,
    }  # fmt: skip
