"""Importing organisation users from a CSV file: all of them or none, with every problem named by its line.

The file is the one an admin exports from a spreadsheet: a header ``username,name,email,password`` (in that
order; ``name`` and ``email`` may be empty), one user per line, UTF-8 (a byte-order mark is allowed). Every line
is checked before anything is hashed or stored (a malformed field, a weak password, a username twice in the
file or already taken), and the file is refused whole with the first problems and their line numbers; only a
clean file is hashed and stored, in the caller's one transaction. The file and its number of users are bounded,
since each password costs one argon2 hash.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.admin import directory
from pippin.admin import passwords as password_hashing
from pippin.admin.audit import Actor
from pippin.admin.passwords import Passwords
from pippin.admin.users import check_password_strength
from pippin.errors import InvalidInput, PippinError
from pippin.store.models import DirectoryUser, utcnow

HEADER = ("username", "name", "email", "password")
#: A few thousand users a file: each costs one argon2 hash (a noticeable fraction of a second of one core).
MAX_USERS = 5000
MAX_FILE_BYTES = 2 * 1024 * 1024
#: Problems listed in the refusal; the rest are counted.
MAX_PROBLEMS_SHOWN = 20


@dataclass(frozen=True)
class _Row:
    line: int
    username: str
    display_name: str | None
    email: str | None
    password: str


def _problem(line: int, error: PippinError | str) -> str:
    text = error if isinstance(error, str) else error.message
    return f"line {line}: {text}"


def parse_users(content: bytes) -> list[_Row]:
    """The users of a CSV file, every line checked; :class:`InvalidInput` listing each problem by line."""
    if len(content) > MAX_FILE_BYTES:
        raise InvalidInput(
            f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB.",
            hint=f"Split it into files of at most {MAX_USERS} users.",
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        raise InvalidInput(f"line {line}: the file is not UTF-8 text.", hint="Save it as CSV UTF-8.") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InvalidInput(f"line {line}: the file holds a NUL character; it is not a CSV file.")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[str] = []
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    try:
        header = next(reader, None)
        if header is None or tuple(field.strip().lower() for field in header) != HEADER:
            raise InvalidInput(
                "line 1: the header is not username,name,email,password.",
                hint="Make the first line exactly: username,name,email,password",
            )
        for fields in reader:
            line = reader.line_num
            if not fields or fields == [""]:
                continue
            if len(rows) >= MAX_USERS:
                raise InvalidInput(f"The file has more than {MAX_USERS} users.", hint="Split it into smaller files.")
            if len(fields) != len(HEADER):
                problems.append(_problem(line, f"{len(fields)} fields where the header has {len(HEADER)}"))
                continue
            try:
                name = directory.normalize_username(fields[0])
                row = _Row(
                    line=line,
                    username=name,
                    display_name=directory.check_display_name(fields[1]),
                    email=directory.check_user_email(fields[2]),
                    password=fields[3],
                )
                check_password_strength(row.password)
            except InvalidInput as error:
                problems.append(_problem(line, error))
                continue
            if name in seen:
                problems.append(_problem(line, f"the username {name!r} is on line {seen[name]} already"))
                continue
            seen[name] = line
            rows.append(row)
    except csv.Error as error:
        problems.append(_problem(reader.line_num, f"not CSV ({error})"))
    _refuse_if_any(problems)
    if not rows:
        raise InvalidInput("The file lists no users.", hint="Add a line per user below the header.")
    return rows


def _refuse_if_any(problems: list[str]) -> None:
    if not problems:
        return
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = len(problems) - len(shown)
    listing = "; ".join(shown) + (f"; and {more} more" if more else "")
    raise InvalidInput(
        f"The file was not imported ({len(problems)} problem{'s' if len(problems) != 1 else ''}): {listing}.",
        hint="Fix these lines and import the whole file again; no user was added.",
    )


def import_users(
    session: Session,
    *,
    content: bytes,
    actor: Actor,
    passwords: Passwords | None = None,
    now: datetime | None = None,
) -> list[directory.DirectoryUserRead]:
    """Add every user of a CSV file in the caller's transaction, or none (see the module docstring)."""
    rows = parse_users(content)
    names = [row.username for row in rows]
    taken: set[str] = set()
    for start in range(0, len(names), 500):  # bounded IN lists
        chunk = names[start : start + 500]
        taken.update(session.scalars(select(DirectoryUser.username).where(DirectoryUser.username.in_(chunk))))
    _refuse_if_any(
        [_problem(row.line, f"a user {row.username!r} already exists") for row in rows if row.username in taken]
    )
    hashing = passwords or password_hashing.DEFAULT_PASSWORDS
    moment = now or utcnow()
    return [
        directory.insert_user(
            session,
            username=row.username,
            display_name=row.display_name,
            email=row.email,
            password_hash=hashing.hash(row.password),
            actor=actor,
            via="import",
            now=moment,
        )
        for row in rows
    ]
