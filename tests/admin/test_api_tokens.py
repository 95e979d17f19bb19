"""Admin API tokens: shown once, stored as a hash, revocable, names validated."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.admin.api_tokens import (
    TOKEN_PREFIX,
    authenticate_api_token,
    create_api_token,
    list_api_tokens,
    revoke_api_token,
)
from pippin.errors import Conflict, InvalidInput, NotFound
from pippin.store.models import AdminAPIToken
from tests.actors import TEST_ACTOR

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_create_returns_the_plaintext_once_and_stores_only_its_hash(session: Session) -> None:
    read, plaintext = create_api_token(session, name="ci-deploy", actor=TEST_ACTOR)
    assert plaintext.startswith(TOKEN_PREFIX) and len(plaintext) >= len(TOKEN_PREFIX) + 43
    assert read.name == "ci-deploy" and read.active and read.last_used_at is None
    assert plaintext not in read.model_dump_json()
    row = session.scalars(select(AdminAPIToken)).one()
    assert row.token_sha256 == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in repr(vars(row))


def test_two_tokens_never_share_a_secret(session: Session) -> None:
    _, first = create_api_token(session, name="a", actor=TEST_ACTOR)
    _, second = create_api_token(session, name="b", actor=TEST_ACTOR)
    assert first != second


def test_a_taken_name_is_a_conflict_and_adds_nothing(session: Session) -> None:
    create_api_token(session, name="ops", actor=TEST_ACTOR)
    with pytest.raises(Conflict):
        create_api_token(session, name="ops", actor=TEST_ACTOR)
    assert len(list_api_tokens(session)) == 1


@pytest.mark.parametrize("name", ["", "../etc", "a b", "-lead", "x" * 65, "x" * 10_000, "naïve", "a/b", "a\nb"])
def test_bad_names_are_refused(session: Session, name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        create_api_token(session, name=name, actor=TEST_ACTOR)
    assert len(caught.value.message) < 200
    assert list_api_tokens(session) == []


def test_authenticate_accepts_the_token_and_records_use_at_most_once_a_minute(session: Session) -> None:
    _, plaintext = create_api_token(session, name="ops", actor=TEST_ACTOR)
    token = authenticate_api_token(session, bearer=plaintext, now=T0)
    assert token is not None and token.name == "ops" and token.last_used_at == T0
    authenticate_api_token(session, bearer=plaintext, now=T0 + timedelta(seconds=30))
    assert token.last_used_at == T0
    authenticate_api_token(session, bearer=plaintext, now=T0 + timedelta(minutes=2))
    assert token.last_used_at == T0 + timedelta(minutes=2)


@pytest.mark.parametrize(
    "bearer",
    ["", "pippin_", "pippin_wrong", "not-a-pippin-token", "pippin_" + "A" * 500, "\x00\xff"],
)
def test_authenticate_refuses_anything_else(session: Session, bearer: str) -> None:
    create_api_token(session, name="ops", actor=TEST_ACTOR)
    assert authenticate_api_token(session, bearer=bearer) is None


def test_a_revoked_token_no_longer_authenticates(session: Session) -> None:
    _, plaintext = create_api_token(session, name="ops", actor=TEST_ACTOR)
    read = revoke_api_token(session, name="ops", now=T0, actor=TEST_ACTOR)
    assert not read.active and read.revoked_at == T0
    assert authenticate_api_token(session, bearer=plaintext) is None
    again = revoke_api_token(session, name="ops", now=T0 + timedelta(days=1), actor=TEST_ACTOR)
    assert again.revoked_at == T0


def test_revoking_an_unknown_name_says_so(session: Session) -> None:
    with pytest.raises(NotFound) as caught:
        revoke_api_token(session, name="ghost", actor=TEST_ACTOR)
    assert caught.value.hint


def test_list_shows_active_and_revoked_tokens_oldest_first(session: Session) -> None:
    create_api_token(session, name="first", now=T0, actor=TEST_ACTOR)
    create_api_token(session, name="second", now=T0 + timedelta(hours=1), actor=TEST_ACTOR)
    revoke_api_token(session, name="first", actor=TEST_ACTOR)
    listed = list_api_tokens(session)
    assert [(t.name, t.active) for t in listed] == [("first", False), ("second", True)]


def test_a_token_is_read_only_unless_made_read_write(session: Session) -> None:
    reader, _ = create_api_token(session, name="dashboard", actor=TEST_ACTOR)
    writer, _ = create_api_token(session, name="deploy", scope="read-write", actor=TEST_ACTOR)
    assert (reader.scope, writer.scope) == ("read-only", "read-write")
    assert [token.scope for token in list_api_tokens(session)] == ["read-only", "read-write"]


def test_an_unknown_scope_is_refused_and_nothing_is_stored(session: Session) -> None:
    with pytest.raises(InvalidInput) as refused:
        create_api_token(session, name="ops", scope="admin", actor=TEST_ACTOR)
    assert "read-only or read-write" in (refused.value.hint or "")
    assert session.scalars(select(AdminAPIToken)).all() == []
