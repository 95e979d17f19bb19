"""`pippin dep delete` and `pippin admin user disable | enable | unlock | set-role | reset-password`, and token
scopes: translation only (exit codes, output, prompts); refusals exit with their code and change nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pippin.admin import users as user_service
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.server.app import create_server
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import AdminUser, AuditEvent, DEPToken, utcnow
from tests.actors import TEST_ACTOR
from tests.admin.throttling import block_account, blocked_counters, password_is
from tests.cli.conftest import Pippin
from tests.servers import quick_password_hashes
from tests.token_with_history import ACME_COUNTS, linked_enrollments, row_counts, seed_tokens

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_password_hashes(monkeypatch)


@pytest.fixture
def factory(session_factory: SessionFactory) -> SessionFactory:
    """The test database the commands use (the suite's fixture, which disposes of its engine)."""
    return session_factory


@pytest.fixture
def world(factory: SessionFactory) -> None:
    with transaction(factory) as session:
        seed_tokens(session)
        for email, role in (("ann@example.com", "admin"), ("rita@example.com", "read-only")):
            user_service.create_user(session, email=email, password=PASSWORD, role=role, actor=TEST_ACTOR)


def _counts(factory: SessionFactory) -> dict[str, int]:
    with transaction(factory) as session:
        return row_counts(session)


def _account(factory: SessionFactory, email: str) -> tuple[Any, ...]:
    with transaction(factory) as session:
        user = session.scalars(select(AdminUser).where(AdminUser.email == email)).one()
        return user.role, user.disabled_at, user.password_hash


def test_delete_shows_the_counts_and_asks_first(pippin: Pippin, factory: SessionFactory, world: None) -> None:
    before = _counts(factory)
    declined = pippin("dep", "delete", "acme", input="n\n")
    assert declined.exit_code == 1 and "Nothing was deleted" in declined.stderr
    for phrase in ("4 device records", "3 sync runs", "2 profile definitions", "(Staff)", "2 queued or retrying"):
        assert phrase in declined.stderr, phrase
    assert "2 enrollments are kept" in declined.stderr and "Nothing is sent to Apple" in declined.stderr
    assert _counts(factory) == before
    confirmed = pippin("dep", "delete", "acme", input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert "Deleted DEP token 'acme': 4 device records" in confirmed.stdout
    with transaction(factory) as session:
        assert session.scalars(select(DEPToken.name)).all() == ["other"]
        assert linked_enrollments(session)["UDID-A4"] is None
        assert session.scalars(select(AuditEvent.action).where(AuditEvent.interface == "cli")).all()[-1] == (
            "dep.token.delete"
        )


def test_delete_yes_skips_the_question_and_json_prints_what_went(pippin: Pippin, world: None) -> None:
    deleted = pippin("dep", "delete", "acme", "--yes", "--json")
    assert deleted.exit_code == 0, deleted.output
    body = json.loads(deleted.stdout)
    assert {key: body[key] for key in ACME_COUNTS} == ACME_COUNTS and body["deleted"] is True


@pytest.mark.parametrize(("name", "code"), [("ghost", 3), ("../acme", 2)])
def test_deleting_an_unknown_or_malformed_token_exits_with_its_code(
    pippin: Pippin, factory: SessionFactory, world: None, name: str, code: int
) -> None:
    before = _counts(factory)
    for args in (("dep", "delete", name), ("dep", "delete", name, "--yes")):
        result = pippin(*args)
        assert result.exit_code == code and "error:" in result.stderr
    assert _counts(factory) == before


def test_a_running_sync_holds_the_deletion_back(pippin: Pippin, factory: SessionFactory, world: None) -> None:
    with transaction(factory) as session:
        token = session.scalars(select(DEPToken).where(DEPToken.name == "acme")).one()
        token.sync_window_until = utcnow() + timedelta(minutes=5)
    before = _counts(factory)
    result = pippin("dep", "delete", "acme", "--yes")
    assert result.exit_code == 4 and "already running" in result.stderr
    assert _counts(factory) == before


def test_disable_enable_unlock_and_set_role(
    pippin: Pippin, factory: SessionFactory, settings: Settings, world: None
) -> None:
    disabled = pippin("admin", "user", "disable", "rita@example.com")
    assert disabled.exit_code == 0 and "disabled" in disabled.stdout
    listed = json.loads(pippin("admin", "user", "list", "--json").stdout)
    assert [item["disabled_at"] is not None for item in listed] == [False, True]
    assert "disabled since" in pippin("admin", "user", "list").stdout
    enabled = pippin("admin", "user", "enable", "rita@example.com", "--json")
    assert enabled.exit_code == 0 and json.loads(enabled.stdout)["disabled_at"] is None
    box = SecretBox.from_settings(settings)
    with transaction(factory) as session:
        block_account(session, box, "rita@example.com")
    assert pippin("admin", "user", "unlock", "rita@example.com").exit_code == 0
    with transaction(factory) as session:
        assert blocked_counters(session, box, "rita@example.com") == 0
    promoted = pippin("admin", "user", "set-role", "rita@example.com", "admin")
    assert promoted.exit_code == 0 and "now admin" in promoted.stdout
    actions = [event["action"] for event in json.loads(pippin("audit", "list", "--json").stdout)]
    assert actions[:4] == ["admin.user.set_role", "admin.user.unlock", "admin.user.enable", "admin.user.disable"]


def test_reset_password_prompts_reads_stdin_or_generates(pippin: Pippin, factory: SessionFactory, world: None) -> None:
    prompted = pippin("admin", "user", "reset-password", "rita@example.com", input="a new passphrase 1\n" * 2)
    assert prompted.exit_code == 0, prompted.output
    piped = pippin("admin", "user", "reset-password", "rita@example.com", "--password-stdin", input="pass phrase two\n")
    assert piped.exit_code == 0 and "pass phrase two" not in piped.stdout
    generated = pippin("admin", "user", "reset-password", "rita@example.com", "--generate")
    assert generated.exit_code == 0
    password = generated.stdout.splitlines()[0]
    with transaction(factory) as session:
        assert password_is(session, "rita@example.com", password)
    events = pippin("audit", "list", "--json").stdout
    assert password not in events and "pass phrase two" not in events


@pytest.mark.parametrize(
    ("args", "stdin", "code"),
    [
        (("admin", "user", "disable", "ann@example.com"), None, 4),
        (("admin", "user", "set-role", "ann@example.com", "read-only"), None, 4),
        (("admin", "user", "disable", "ghost@example.com"), None, 3),
        (("admin", "user", "enable", "not-an-address"), None, 2),
        (("admin", "user", "set-role", "rita@example.com", "superuser"), None, 2),
        (("admin", "user", "reset-password", "ghost@example.com", "--generate"), None, 3),
        (("admin", "user", "reset-password", "rita@example.com", "--password-stdin"), "tiny-pw\n", 2),
        (("admin", "user", "reset-password", "rita@example.com", "--password-stdin", "--generate"), None, 2),
    ],
)
def test_refusals_exit_with_their_code_and_change_nothing(
    pippin: Pippin, factory: SessionFactory, world: None, args: tuple[str, ...], stdin: str | None, code: int
) -> None:
    before = _counts(factory), _account(factory, "ann@example.com"), _account(factory, "rita@example.com")
    result = pippin(*args, input=stdin)
    assert result.exit_code == code, result.output
    assert "error:" in result.stderr and "tiny-pw" not in result.output
    after = _counts(factory), _account(factory, "ann@example.com"), _account(factory, "rita@example.com")
    assert after == before


def test_tokens_are_read_only_unless_created_read_write(pippin: Pippin, settings: Settings, world: None) -> None:
    reader = pippin("admin", "token", "create", "dashboard")
    writer = pippin("admin", "token", "create", "deploy", "--scope", "read-write")
    assert reader.exit_code == writer.exit_code == 0
    assert "read-only API token" in reader.stdout and "read-write API token" in writer.stdout
    listed = json.loads(pippin("admin", "token", "list", "--json").stdout)
    assert [(item["name"], item["scope"]) for item in listed] == [("dashboard", "read-only"), ("deploy", "read-write")]
    assert pippin("admin", "token", "create", "x", "--scope", "admin").exit_code == 2
    with TestClient(create_server(settings)) as client:
        for plaintext, status in ((reader.stdout.splitlines()[0], 403), (writer.stdout.splitlines()[0], 200)):
            headers = {"Authorization": f"Bearer {plaintext}"}
            assert client.get("/api/v1/dep/tokens", headers=headers).status_code == 200
            assert client.post("/api/v1/admins/rita@example.com/unlock", headers=headers).status_code == status
