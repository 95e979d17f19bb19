"""The next-command query reads the partial index of waiting commands, never the history: EXPLAIN on both databases
with many finished commands in the table, and on PostgreSQL the rows the index scan actually read."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from pippin.mdm.connect import next_command_query
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import Command, CommandStatus
from tests.push.conftest import T0, enroll, udid_of

FINISHED = 5_000
WAITING = 3


def _fill(session_factory: SessionFactory) -> str:
    udids = enroll(session_factory, 10)
    target = udids[0]
    rows = [
        {
            "command_uuid": f"done-{index}",
            "udid": udids[index % len(udids)],
            "request_type": "DeviceInformation",
            "priority": 0,
            "status": CommandStatus.acknowledged if index % 3 else CommandStatus.error,
            "created_at": T0 - timedelta(days=1),
            "expires_at": T0 + timedelta(days=29),
            "finished_at": T0 - timedelta(hours=1),
            "body_encrypted": b"sealed",
            "deliveries": 1,
            "not_now_count": 0,
        }
        for index in range(FINISHED)
    ]
    waiting = [
        {**rows[0], "command_uuid": f"wait-{index}", "udid": target, "status": status, "finished_at": None}
        for index, status in enumerate((CommandStatus.queued, CommandStatus.sent, CommandStatus.not_now)[:WAITING])
    ]
    with transaction(session_factory) as session:
        session.execute(insert(Command), rows + waiting)
    return target


def _plan(session: Session, engine: Engine, sql: str) -> str:
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    return "\n".join(str(row[-1]) for row in session.connection().exec_driver_sql(prefix + sql))


def test_the_next_command_query_reads_only_the_index_of_waiting_commands(
    engine: Engine, session_factory: SessionFactory
) -> None:
    target = _fill(session_factory)
    with session_factory() as session:
        session.connection().exec_driver_sql("ANALYZE")
        sql = str(
            next_command_query(udid=target).compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
        )
        plan = _plan(session, engine, sql)
        assert "ix_commands_next" in plan, plan
        assert "SCAN commands" not in plan and "Seq Scan" not in plan, plan
        if engine.dialect.name == "postgresql":
            analyzed = session.connection().exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).scalar_one()
            nodes = [analyzed[0]["Plan"] if isinstance(analyzed, list) else json.loads(analyzed)[0]["Plan"]]
            scanned = []
            while nodes:
                node = nodes.pop()
                if node.get("Index Name") == "ix_commands_next":
                    scanned.append(node["Actual Rows"])
                nodes.extend(node.get("Plans", []))
            assert scanned and max(scanned) <= WAITING, analyzed
        found = session.scalars(next_command_query(udid=target)).first()
        assert found is not None and session.get(Command, found).command_uuid == "wait-0"
    with session_factory() as session:
        assert session.scalars(next_command_query(udid=udid_of(1))).first() is None
