"""Upgrading to the revision that keeps device counts counts the devices already there, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from pippin.store.migrate import alembic_config, upgrade_to, upgrade_to_head
from tests.inventory.test_state_counts import kept, recount

MOMENT = datetime(2026, 1, 17, 12, 0, tzinfo=UTC)


def test_upgrading_counts_the_devices_already_there(empty_engine: Engine) -> None:
    before_counts = ScriptDirectory.from_config(alembic_config(empty_engine)).get_revision("0011").down_revision
    assert isinstance(before_counts, str)
    upgrade_to(empty_engine, before_counts)
    apple = ("assigned", "removed")
    profile_statuses = ("empty", "assigned", "pushed", None)
    enrollments = (None, "enrolled", "unenrolled", "failed")
    with empty_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO dep_tokens (id, name, status, fetch_generation, fetch_refreshes, created_at, updated_at) "
                "VALUES (1, 'acme', 'ok', 0, FALSE, :moment, :moment)"
            ),
            {"moment": MOMENT},
        )
        connection.execute(
            text(
                "INSERT INTO enrollment_profiles (id, name, revision, user_affinity, is_supervised, "
                "is_mdm_removable, is_mandatory, allow_pairing, await_device_configured, auto_advance_setup, "
                "anchor_certs, skip_setup_items, created_at, updated_at) VALUES (1, 'Staff', 2, 'none', TRUE, "
                "FALSE, TRUE, TRUE, FALSE, FALSE, '[]', '[]', :moment, :moment)"
            ),
            {"moment": MOMENT},
        )
        for number in range(48):
            connection.execute(
                text(
                    "INSERT INTO devices (id, serial_number, token_id, apple_status, profile_status, "
                    "assigned_profile_id, assigned_revision, first_seen_at, last_synced_at, apple_record, "
                    "fetch_generation) VALUES (:id, :serial, :token, :apple, :profile_status, :profile, :revision, "
                    ":moment, :moment, '{}', 0)"
                ),
                {
                    "id": number + 1,
                    "serial": f"S{number:03d}",
                    "token": 1 if number % 5 else None,
                    "apple": apple[number % 2],
                    "profile_status": profile_statuses[number % 4],
                    "profile": 1 if number % 3 else None,
                    "revision": 2 if number % 6 else 1,
                    "moment": MOMENT,
                },
            )
            status = enrollments[(number // 2) % 4]
            if status is not None:
                connection.execute(
                    text(
                        "INSERT INTO enrollments (udid, device_id, status, profile_id, profile_revision, "
                        "first_contact_at) VALUES (:udid, :device, :status, 1, :revision, :moment)"
                    ),
                    {
                        "udid": f"U{number}",
                        "device": number + 1,
                        "status": status,
                        "revision": number % 3,
                        "moment": MOMENT,
                    },
                )
    upgrade_to_head(empty_engine)
    with Session(empty_engine) as session:
        counted = kept(session)
        assert counted == recount(session)
        assert sum(counted.values()) == 48
        assert len({state for _, state, _ in counted}) >= 5
