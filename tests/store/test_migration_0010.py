"""Revision 0010 replaces the per-account lock-out with the sign-in throttle's counters: the admins, their
sessions and the audit log stay; the lock-out columns go (and come back, zeroed, on a downgrade)."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Engine, func, inspect, select, text

from pippin.store.migrate import alembic_config, migration_connection, upgrade_to

T = datetime(2026, 12, 1, 9, 0, tzinfo=UTC).replace(tzinfo=None)  # stored naive UTC, as UTCDateTime does


def _populate_at_0007(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO admin_users (id, email, password_hash, role, created_at, failed_sign_ins, locked_until) "
                "VALUES (1, 'ann@example.com', '$argon2id$stored', 'admin', :at, 5, :at)"
            ),
            {"at": T},
        )
        conn.execute(
            text(
                "INSERT INTO admin_sessions (id, token_sha256, user_id, created_at, last_seen_at, expires_at) "
                "VALUES (1, :digest, 1, :at, :at, :at)"
            ),
            {"digest": "a" * 64, "at": T},
        )


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(text(table))) or 0)


def test_upgrading_to_0010_keeps_admins_and_sessions_and_drops_the_lock_out(empty_engine: Engine) -> None:
    upgrade_to(empty_engine, "0007")
    _populate_at_0007(empty_engine)
    upgrade_to(empty_engine, "0010")
    columns = {column["name"] for column in inspect(empty_engine).get_columns("admin_users")}
    assert "locked_until" not in columns and "failed_sign_ins" not in columns
    assert (_count(empty_engine, "admin_users"), _count(empty_engine, "admin_sessions")) == (1, 1)
    assert _count(empty_engine, "sign_in_throttles") == 0
    indexes = {index["name"] for index in inspect(empty_engine).get_indexes("sign_in_throttles")}
    assert "ix_sign_in_throttles_window_started_at" in indexes


def test_downgrading_from_0010_gives_back_unlocked_accounts(empty_engine: Engine) -> None:
    upgrade_to(empty_engine, "0007")
    _populate_at_0007(empty_engine)
    upgrade_to(empty_engine, "0010")
    with migration_connection(empty_engine) as connection:
        config = alembic_config(empty_engine)
        config.attributes["connection"] = connection
        command.downgrade(config, "0007")
    with empty_engine.connect() as conn:
        rows = conn.execute(text("SELECT email, failed_sign_ins, locked_until FROM admin_users")).all()
    assert [tuple(row) for row in rows] == [("ann@example.com", 0, None)]
    assert _count(empty_engine, "admin_sessions") == 1
    assert "sign_in_throttles" not in inspect(empty_engine).get_table_names()
