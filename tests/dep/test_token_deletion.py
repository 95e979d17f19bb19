"""Deleting a DEP token: what goes with it is counted first and removed in one transaction; enrollments stay,
unlinked; a running sync or an unknown name refuses it and changes nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.dep import token_deletion
from pippin.dep.sync import start_sync
from pippin.dep.sync_runs import SyncWindowClosed
from pippin.errors import InvalidInput, NotFound
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import AuditEvent, DEPProfile, DEPToken, Device, ProfileDefinition, SyncRun, utcnow
from tests.actors import TEST_ACTOR
from tests.locks import wait_until_a_lock_is_awaited
from tests.token_with_history import ACME_COUNTS, linked_enrollments, row_counts, seed_tokens


def test_the_preview_counts_what_goes_and_changes_nothing(session: Session) -> None:
    seed_tokens(session)
    before = row_counts(session)
    preview = token_deletion.preview_token_deletion(session, name="acme")
    assert preview.model_dump(include=set(ACME_COUNTS)) == ACME_COUNTS
    assert not preview.deleted and preview.server_name == "Acme iOS"
    assert "Nothing is sent to Apple" in preview.apple
    assert row_counts(session) == before


def test_deleting_removes_what_is_only_the_tokens_and_keeps_the_rest(session_factory: SessionFactory) -> None:
    with transaction(session_factory) as session:
        seeded = seed_tokens(session)
    with transaction(session_factory) as session:
        removed = token_deletion.delete_token(session, name="acme", actor=TEST_ACTOR)
    assert removed.deleted and removed.model_dump(include=set(ACME_COUNTS)) == ACME_COUNTS
    with transaction(session_factory) as session:
        assert session.scalars(select(DEPToken.name)).all() == ["other"]
        assert session.scalars(select(Device.serial_number)).all() == ["O1"]
        assert set(session.scalars(select(SyncRun.token_id))) == {seeded.other_id}
        assert set(session.scalars(select(ProfileDefinition.token_id))) == {seeded.other_id}
        # The profile is Pippin's, not the token's; the device half's enrollments stay, unlinked.
        assert session.scalars(select(DEPProfile.name)).all() == ["Staff"]
        assert linked_enrollments(session) == {"UDID-A3": None, "UDID-A4": None, "UDID-O1": "O1"}
        event = session.scalars(select(AuditEvent)).one()
        assert (event.action, event.target, event.actor) == ("dep.token.delete", "acme", TEST_ACTOR.name)
        assert event.detail["devices"] == 4 and event.detail["enrollments_unlinked"] == 2


def test_a_running_sync_refuses_the_deletion_and_nothing_changes(session_factory: SessionFactory) -> None:
    with transaction(session_factory) as session:
        seeded = seed_tokens(session)
        token = session.get(DEPToken, seeded.acme_id)
        assert token is not None
        token.sync_window_until = utcnow() + timedelta(minutes=5)
    with transaction(session_factory) as session:
        before = row_counts(session)
    with pytest.raises(SyncWindowClosed) as refused, transaction(session_factory) as session:
        token_deletion.delete_token(session, name="acme", actor=TEST_ACTOR)
    assert refused.value.hint and "acme" in refused.value.message
    with transaction(session_factory) as session:
        assert row_counts(session) == before


def test_a_window_that_ended_does_not_hold_the_deletion_back(session: Session) -> None:
    seeded = seed_tokens(session)
    token = session.get(DEPToken, seeded.acme_id)
    assert token is not None
    token.sync_window_until = utcnow() - timedelta(seconds=1)
    assert token_deletion.delete_token(session, name="acme", actor=TEST_ACTOR).devices == 4


@pytest.mark.parametrize(("name", "error"), [("ghost", NotFound), ("../acme", InvalidInput), ("x" * 500, InvalidInput)])
def test_unknown_or_malformed_names_are_refused_and_nothing_changes(
    session: Session, name: str, error: type[Exception]
) -> None:
    seed_tokens(session)
    before = row_counts(session)
    with pytest.raises(error):
        token_deletion.delete_token(session, name=name, actor=TEST_ACTOR)
    with pytest.raises(error):
        token_deletion.preview_token_deletion(session, name=name)
    assert row_counts(session) == before


def test_a_token_with_nothing_yet_is_deleted_alone(session: Session) -> None:
    session.add(DEPToken(name="fresh"))
    session.flush()
    removed = token_deletion.delete_token(session, name="fresh", actor=TEST_ACTOR)
    assert (removed.devices, removed.sync_runs, removed.default_profile) == (0, 0, None)
    assert session.scalars(select(DEPToken)).all() == []


def test_a_sync_asked_for_while_the_token_is_being_deleted_finds_no_token(
    engine: Engine, session_factory: SessionFactory, settings: Settings
) -> None:
    """The deletion holds the token's row; "Sync now" waits for it, then says the token is gone (never a 500)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises write transactions from their start; only PostgreSQL lets the two overlap")
    with transaction(session_factory) as session:
        seed_tokens(session)
        token = session.scalars(select(DEPToken).where(DEPToken.name == "acme")).one()
        token.credentials_encrypted = b"sealed"
    outcome: list[BaseException | None] = []

    def sync_now() -> None:
        try:
            with transaction(session_factory) as session:
                start_sync(session, token_name="acme", settings=settings)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    with transaction(session_factory) as deleting:
        token_deletion.delete_token(deleting, name="acme", actor=TEST_ACTOR)
        waiter = threading.Thread(target=sync_now)
        waiter.start()
        wait_until_a_lock_is_awaited(engine, "the sync, on the token row being deleted,")
    waiter.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], NotFound), outcome
