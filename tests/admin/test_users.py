"""Admin accounts: argon2 hashes, refusals that store nothing, and `pippin admin user create`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from pippin.admin import users as user_service
from pippin.admin.passwords import DEFAULT_PASSWORDS
from pippin.cli.main import app
from pippin.errors import Conflict, InvalidInput
from pippin.store.db import create_db_engine, create_session_factory, transaction
from pippin.store.models import AdminUser, AuditEvent
from tests.actors import TEST_ACTOR

PASSWORD = "correct horse battery staple"


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AdminUser)) or 0


def test_a_new_admin_is_stored_with_an_argon2_hash_and_a_lower_case_email(session: Session) -> None:
    created = user_service.create_user(session, email="  Ann@Example.COM ", password=PASSWORD, actor=TEST_ACTOR)
    assert created.email == "ann@example.com" and created.role == "admin"
    stored = session.scalars(select(AdminUser)).one()
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
    assert DEFAULT_PASSWORDS.verify(stored.password_hash, PASSWORD)


@pytest.mark.parametrize(
    ("email", "password", "role"),
    [
        ("not-an-email", PASSWORD, "admin"),
        ("a" * 400 + "@example.com", PASSWORD, "admin"),
        ("ann@example.com", "tiny-pw", "admin"),
        ("ann@example.com", "x" * 5000, "admin"),
        ("ann@example.com", PASSWORD, "superuser"),
        ("<script>@x.y", PASSWORD, "admin"),
        ("x@y", PASSWORD, "admin"),
        ("ann@example.com", "\x00" * 20, "admin"),
        ("ann@example.com", PASSWORD + "\x1b", "admin"),
        ("a\x00b@example.com", PASSWORD, "admin"),
        ("ann@example.com\u202e", PASSWORD, "admin"),
        ("ann@exam\u200bple.com", PASSWORD, "admin"),
        ("ann@example.com\u2028", PASSWORD, "admin"),
    ],
)
def test_bad_accounts_are_refused_and_nothing_is_stored(session: Session, email: str, password: str, role: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        user_service.create_user(session, email=email, password=password, role=role, actor=TEST_ACTOR)
    assert refused.value.hint and password not in str(refused.value)
    assert _count(session) == 0


def test_an_address_can_hold_one_account(session: Session) -> None:
    user_service.create_user(session, email="ann@example.com", password=PASSWORD, actor=TEST_ACTOR)
    with pytest.raises(Conflict):
        user_service.create_user(
            session, email="ANN@example.com", password=PASSWORD, role="read-only", actor=TEST_ACTOR
        )
    assert _count(session) == 1


@pytest.fixture
def cli_env(tmp_path: Path, sqlite_template: Path) -> dict[str, str]:
    path = tmp_path / "pippin.db"
    shutil.copy(sqlite_template, path)
    return {"PIPPIN_DATA_DIR": str(tmp_path / "data"), "PIPPIN_DATABASE_URL": f"sqlite:///{path}", "COLUMNS": "200"}


def test_cli_creates_a_read_only_admin_from_stdin_and_records_it(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["admin", "user", "create", "Rita@Example.com", "--role", "read-only", "--password-stdin", "--json"],
        input=PASSWORD + "\n",
        env=cli_env,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["role"] == "read-only" and PASSWORD not in result.output
    engine = create_db_engine(cli_env["PIPPIN_DATABASE_URL"])
    try:
        with transaction(create_session_factory(engine)) as session:
            event = session.scalars(select(AuditEvent)).one()
            assert (event.interface, event.action, event.target) == ("cli", "admin.user.create", "rita@example.com")
            assert event.detail == {"role": "read-only"} and event.source
    finally:
        engine.dispose()
    listed = runner.invoke(app, ["admin", "user", "list", "--json"], env=cli_env)
    assert [user["email"] for user in json.loads(listed.stdout)] == ["rita@example.com"]


def test_cli_prompts_for_the_password_twice(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        app, ["admin", "user", "create", "ann@example.com"], input=f"{PASSWORD}\n{PASSWORD}\n", env=cli_env
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (["nobody", "--password-stdin"], PASSWORD + "\n"),
        (["ann@example.com", "--password-stdin"], "short\n"),
        (["ann@example.com", "--password-stdin"], "\n"),
        (["ann@example.com", "--password-stdin"], "y" * 3000 + "\n"),
        (["ann@example.com", "--role", "root", "--password-stdin"], PASSWORD + "\n"),
    ],
)
def test_cli_refuses_bad_input_with_exit_code_2(cli_env: dict[str, str], args: list[str], stdin: str) -> None:
    result = CliRunner().invoke(app, ["admin", "user", "create", *args], input=stdin, env=cli_env)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    listed = CliRunner().invoke(app, ["admin", "user", "list", "--json"], env=cli_env)
    assert json.loads(listed.stdout) == []
