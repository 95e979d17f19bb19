"""`pippin users add | list | disable | import`: translation of the directory's use cases, with the actor audited
and refusals that change nothing."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from pippin.config import Settings
from pippin.store.db import create_db_engine, create_session_factory, read_transaction
from pippin.store.models import AuditEvent, DirectoryUser
from tests.cli.conftest import Pippin

PASSWORD = "a perfectly long password"


def _stored(settings: Settings) -> tuple[list[str], list[tuple[str, str, str | None]]]:
    engine = create_db_engine(str(settings.database_url))
    try:
        with read_transaction(create_session_factory(engine)) as session:
            users = list(session.scalars(select(DirectoryUser.username).order_by(DirectoryUser.username)))
            events = [
                (event.action, event.interface, event.target)
                for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
            ]
        return users, events
    finally:
        engine.dispose()


def test_add_then_list_and_disable(pippin: Pippin, settings: Settings) -> None:
    added = pippin(
        "users",
        "add",
        "Alice",
        "--name",
        "Alice Smith",
        "--email",
        "alice@example.com",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert added.exit_code == 0, added.output
    assert "added alice" in added.stdout and PASSWORD not in added.output
    prompted = pippin("users", "add", "bob", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    listed = json.loads(pippin("users", "list", "--json").stdout)
    assert [(user["username"], user["display_name"], user["disabled_at"]) for user in listed] == [
        ("alice", "Alice Smith", None),
        ("bob", None, None),
    ]
    assert "password_hash" not in listed[0]
    disabled = pippin("users", "disable", "BOB")
    assert disabled.exit_code == 0 and "bob is disabled" in disabled.stdout
    table = pippin("users", "list").stdout
    assert "Alice Smith" in table and "alice@example.com" in table
    _, events = _stored(settings)
    assert events == [
        ("directory.user.add", "cli", "alice"),
        ("directory.user.add", "cli", "bob"),
        ("directory.user.disable", "cli", "bob"),
    ]


def test_refusals_change_nothing(pippin: Pippin, settings: Settings, tmp_path: Path) -> None:
    assert pippin("users", "add", "alice", "--password-stdin", input=PASSWORD + "\n").exit_code == 0
    taken = pippin("users", "add", "ALICE", "--password-stdin", input=PASSWORD + "\n")
    assert taken.exit_code == 4 and "already exists" in taken.output
    mismatched = pippin("users", "add", "carol", input=f"{PASSWORD}\nsomething else entirely\n")
    assert mismatched.exit_code != 0
    for args, stdin, code in (
        (("users", "add", "<script>", "--password-stdin"), PASSWORD, 2),
        (("users", "add", "dave", "--password-stdin"), "tiny", 2),
        (("users", "add", "dave", "--email", "nope", "--password-stdin"), PASSWORD, 2),
        (("users", "disable", "nobody"), "", 3),
        (("users", "import", str(tmp_path / "missing.csv")), "", 2),
        (("users", "import", str(tmp_path)), "", 2),
    ):
        result = pippin(*args, input=stdin + "\n")
        assert result.exit_code == code, (args, result.output)
        assert "Traceback" not in result.output
    users, _ = _stored(settings)
    assert users == ["alice"]


def test_import_is_all_or_nothing_with_line_numbers(pippin: Pippin, settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"username,name,email,password\nerin,,,{PASSWORD}\nfrank,,,tiny\n")
    refused = pippin("users", "import", str(bad))
    assert refused.exit_code == 2 and "line 3" in " ".join(refused.output.split())
    assert _stored(settings)[0] == []
    good = tmp_path / "good.csv"
    good.write_text(f"username,name,email,password\nerin,Erin,,{PASSWORD}\nfrank,,frank@example.com,{PASSWORD}\n")
    imported = pippin("users", "import", str(good), "--json")
    assert imported.exit_code == 0, imported.output
    assert [user["username"] for user in json.loads(imported.stdout)] == ["erin", "frank"]
    again = pippin("users", "import", str(good))
    assert again.exit_code == 2 and "already exists" in again.output
    assert _stored(settings)[0] == ["erin", "frank"]
