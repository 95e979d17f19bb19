"""Importing users from CSV: every user or none, each problem named by its line, the file bounded."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.admin import directory
from pippin.admin import directory_import as importing
from pippin.errors import InvalidInput
from pippin.store.models import AuditEvent, DirectoryUser
from tests.actors import TEST_ACTOR
from tests.servers import cheap_argon2

GOOD = "a perfectly long password"
HEADER = "username,name,email,password\n"


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(DirectoryUser)) or 0


def _import(session: Session, text: str | bytes) -> list[directory.DirectoryUserRead]:
    content = text.encode("utf-8") if isinstance(text, str) else text
    return importing.import_users(session, content=content, actor=TEST_ACTOR, passwords=cheap_argon2())


def test_a_clean_file_adds_every_user_with_their_fields(session: Session) -> None:
    added = _import(
        session,
        "\ufeff" + HEADER + f'alice,"Smith, Alice",alice@example.com,{GOOD}\r\nbob,,,"{GOOD}, with a comma"\n\n',
    )
    assert [(user.username, user.display_name, user.email) for user in added] == [
        ("alice", "Smith, Alice", "alice@example.com"),
        ("bob", None, None),
    ]
    events = session.scalars(select(AuditEvent)).all()
    assert len(events) == 2 and all(event.detail == {"via": "import"} for event in events)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "line 1: the header"),
        (b"user,name,email,password\nalice,,,x\n", "line 1: the header"),
        (HEADER + f"alice,,,{GOOD}\nbob,,\n", "line 3: 3 fields"),
        (HEADER + f"alice,,,{GOOD}\nALICE,,,{GOOD}\n", "line 3: the username 'alice' is on line 2 already"),
        (HEADER + "alice,,,tiny\n", "line 2: The password is shorter"),
        (HEADER + f"<script>,,,{GOOD}\n", "line 2: The username may hold only"),
        (HEADER + f"alice,,not-mail,{GOOD}\n", "line 2: "),
        (HEADER + f"alice,Al\x1bice,,{GOOD}\n", "line 2: "),
        ((HEADER + f"alice,,,{GOOD}\n").encode() + b"bob,\xff,,x\n", "line 3: the file is not UTF-8"),
        (HEADER + f"alice,,,{GOOD}\nbob\x00,,,{GOOD}\n", "line 3: the file holds a NUL"),
        (HEADER + f'alice,"unclosed,,{GOOD}\n', "not CSV"),
        (HEADER, "lists no users"),
        (b"x" * (importing.MAX_FILE_BYTES + 1), "larger than"),
        (HEADER + "".join(f"u{n},,,{GOOD}\n" for n in range(importing.MAX_USERS + 1)), "more than"),
    ],
)
def test_a_file_with_any_problem_is_refused_whole_with_its_line(
    session: Session, content: str | bytes, expected: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        _import(session, content)
    assert expected in refused.value.message
    assert GOOD not in refused.value.message
    assert _count(session) == 0 and session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_every_problem_is_listed_up_to_a_bound(session: Session) -> None:
    lines = "".join(f"bad user {n},,,{GOOD}\n" for n in range(30))
    with pytest.raises(InvalidInput) as refused:
        _import(session, HEADER + lines)
    assert "30 problems" in refused.value.message and "line 2:" in refused.value.message
    assert "and 10 more" in refused.value.message


def test_a_username_taken_already_refuses_the_whole_file(session: Session) -> None:
    directory.add_user(session, username="alice", password=GOOD, actor=TEST_ACTOR, passwords=cheap_argon2())
    with pytest.raises(InvalidInput) as refused:
        _import(session, HEADER + f"bob,,,{GOOD}\nAlice,,,{GOOD}\n")
    assert "line 3: a user 'alice' already exists" in refused.value.message
    assert [user.username for user in directory.list_users(session)] == ["alice"]
