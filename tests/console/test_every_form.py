"""Hostile input to every form the console serves (``tests/console/form_list.py``), on SQLite and PostgreSQL.

Each field of each form gets the values its kind calls for: control, format and separator characters, bytes that
are not UTF-8 (percent-escaped and raw), values at one past each limit and far past it, names that do not work
in a URL, numbers in other shapes, markup, missing and repeated fields, wrong CSRF tokens, and bad files. Each
must be refused with an HTML page (never a 5xx) whose message names the field, without echoing markup, and
must change nothing: every row of every table is compared before and after. The same forms then accept values
at their limits, so the suite cannot pass by refusing everything.

The rows are set up once per database (a token awaiting Apple, one connected to the simulated Apple with
devices, a profile, admins); every refusal leaves them as they were, and the accepted submissions run last.
"""

# Values in other scripts are what some of these cases are about.

from __future__ import annotations

import html
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_from_bytes, quote_plus, unquote

import pytest
from cryptography.fernet import Fernet
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, inspect, select, text
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from pippin.admin import users as user_service
from pippin.admin.actor import AuditAction
from pippin.config import Settings
from pippin.console.app import MAX_REQUEST_BYTES
from pippin.server.resources import ServerResources
from pippin.store.db import create_db_engine, transaction
from pippin.store.models import AdminRole, Base, SignInThrottle
from tests.actors import TEST_ACTOR
from tests.console import form_list
from tests.console.conftest import csrf_of
from tests.console.form_list import FORMS, ConsoleForm, Field, Kind, Rows, UploadedFile, Value
from tests.e2e.apple import add_devices, connect_token
from tests.servers import build_server, mounted_app, quick_password_hashes, resources_of
from tests.simulator import run_simulator

SCRIPT = '<script>alert("pippin")</script>'
#: One of each kind of character the text rule refuses.
CONTROLS = {
    "NUL": "\x00",
    "ESC": "\x1b",
    "DEL": "\x7f",
    "C1 NEL": "\x85",
    "C1 CSI": "\x9b",
    "bidi override U+202E": "\u202e",
    "zero-width space U+200B": "\u200b",
    "line separator U+2028": "\u2028",
    "paragraph separator U+2029": "\u2029",
    "byte-order mark U+FEFF": "\ufeff",
}
NUMBERS = {
    "-1": "-1",
    "2**63": "9223372036854775808",
    "+5": "+5",
    "5.0": "5.0",
    "Arabic-Indic 3": "\u0663",
}
#: What a plain page view of a signed-in session writes: the session's last-seen time, at most once a minute.
IGNORED_COLUMNS = {("admin_sessions", "last_seen_at")}
#: What a refused sign-in attempt legitimately writes: its throttle counters and its audit events.
SIGN_IN_WRITES = {AuditAction.admin_sign_in_failed.value, AuditAction.admin_sign_in_throttled.value}
_ALERT = re.compile(r'<div class="error" role="alert"[^>]*>(.*?)</div>', re.S)
_TAG = re.compile(r"<[^>]+>")


class Raw(bytes):
    """Bytes put into a urlencoded body as they are, not percent-escaped (no browser sends them so)."""


class Missing:
    """The field is left out."""


class Twice:
    """The field is sent twice, each time with the value given."""

    def __init__(self, second: Value) -> None:
        self.second = second


CaseValue = Value | Missing | Twice


@dataclass(frozen=True)
class Case:
    label: str
    value: CaseValue
    #: The words the refusal must use, when not the field's own (a body past the size limit names no field).
    words: tuple[str, ...] | None = None


@dataclass
class Suite:
    database: str
    app: Starlette
    resources: ServerResources
    ann: TestClient
    ann_csrf: str
    ann_again_csrf: str
    rita: TestClient
    rita_csrf: str
    anonymous: TestClient
    rows: Rows
    sent: int = 0
    server_errors: list[str] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        return self.resources.engine


# --- the rows, once per database -----------------------------------------------------------------------------


def _database_url(request: pytest.FixtureRequest, kind: str, directory: Path) -> str:
    if kind == "sqlite":
        path = directory / "pippin.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_schema_url")
    engine = create_db_engine(url)
    try:
        names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
        present = set(inspect(engine).get_table_names())
        assert {table.name for table in Base.metadata.sorted_tables} <= present
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()
    return url


def _signed_in(app: Starlette, email: str, password: str = form_list.PASSWORD) -> tuple[TestClient, str]:
    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    client.__enter__()
    page = client.get("/console/sign-in")
    fields = {"email": email, "password": password, "csrf_token": csrf_of(page.text)}
    answer = client.post("/console/sign-in", data=fields)
    assert answer.status_code == 303, answer.text[:500]
    return client, csrf_of(client.get("/console/").text)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def suite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    directory = tmp_path_factory.mktemp(f"hostile-{request.param}")
    with pytest.MonkeyPatch.context() as patch, run_simulator(directory / "sim") as sim:
        quick_password_hashes(patch)
        settings = Settings(
            data_dir=directory / "data",
            database_url=_database_url(request, request.param, directory),
            secret_key=Fernet.generate_key().decode(),
            dep_base_url=sim.base_url,
            dep_max_retries=1,
        )
        app = build_server(settings)
        resources = resources_of(app)
        with transaction(resources.session_factory) as session:
            for email, role, password in (
                (form_list.ADMIN, AdminRole.admin, form_list.PASSWORD),
                (form_list.READ_ONLY, AdminRole.read_only, form_list.PASSWORD),
                (form_list.OTHER_ADMIN, AdminRole.admin, form_list.PASSWORD),
                (form_list.LONGEST_ADMIN, AdminRole.admin, form_list.LONGEST_PASSWORD),
            ):
                user_service.create_user(session, email=email, password=password, role=role, actor=TEST_ACTOR)
        ann, ann_csrf = _signed_in(app, form_list.ADMIN)
        ann_again, ann_again_csrf = _signed_in(app, form_list.ADMIN)
        rita, rita_csrf = _signed_in(app, form_list.READ_ONLY)
        anonymous = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
        anonymous.__enter__()

        live = connect_token(
            resources.session_factory, settings, sim, form_list.LIVE_TOKEN, generate_key=resources.generate_key
        )
        serials = add_devices(sim, live, 3)
        synced = ann.post(f"/console/tokens/{form_list.LIVE_TOKEN}/sync", data={"csrf_token": ann_csrf})
        assert synced.status_code == 303, synced.text[:500]
        foreign_p7m = sim.portal.get(f"/portal/mdm-servers/{live}/token").content

        made = ann.post("/console/tokens/new", data={"name": form_list.PENDING_TOKEN, "csrf_token": ann_csrf})
        assert made.status_code == 303, made.text[:500]
        pem = ann.get(f"/console/tokens/{form_list.PENDING_TOKEN}/public-key.pem").text
        server = sim.portal.post(
            "/portal/mdm-servers", json={"name": "Acme", "public_key_pem": pem, "admin_apple_id": form_list.ADMIN}
        ).json()
        p7m = sim.portal.get(f"/portal/mdm-servers/{server['server_uuid']}/token").content

        profile = ann.post(
            "/console/profiles/new", data={**form_list.profile_values(form_list.PROFILE), "csrf_token": ann_csrf}
        )
        assert profile.status_code == 303, profile.text[:500]

        running = Suite(
            database=request.param,
            app=app,
            resources=resources,
            ann=ann,
            ann_csrf=ann_csrf,
            ann_again_csrf=ann_again_csrf,
            rita=rita,
            rita_csrf=rita_csrf,
            anonymous=anonymous,
            rows=Rows(p7m=p7m, foreign_p7m=foreign_p7m, serial=serials[0]),
        )
        try:
            yield running
        finally:
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            line = (
                f"hostile console forms on {request.param}: {running.sent} hostile requests, "
                f"{len(running.server_errors)} answered 5xx"
            )
            capture = request.config.pluginmanager.get_plugin("capturemanager")
            if reporter is not None and capture is not None:
                with capture.global_and_fixture_disabled():
                    reporter.write_line(line)
            for client in (ann, ann_again, rita, anonymous):
                client.__exit__(None, None, None)
            resources.engine.dispose()


# --- sending a form ------------------------------------------------------------------------------------------


def _urlencoded(pairs: Sequence[tuple[str, Value]]) -> bytes:
    parts: list[bytes] = []
    for name, value in pairs:
        if isinstance(value, Raw):
            encoded = bytes(value)
        elif isinstance(value, bytes):
            encoded = quote_from_bytes(value, safe="").encode()
        elif isinstance(value, UploadedFile):
            encoded = quote_from_bytes(value.content, safe="").encode()
        else:
            encoded = quote_plus(value).encode()
        parts.append(quote_plus(name).encode() + b"=" + encoded)
    return b"&".join(parts)


def _multipart(pairs: Sequence[tuple[str, Value]], boundary: str) -> bytes:
    body = bytearray()
    for name, value in pairs:
        body += f"--{boundary}\r\n".encode()
        if isinstance(value, UploadedFile):
            filename = value.filename.replace('"', "%22")
            body += f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode()
            body += f"Content-Type: {value.content_type}\r\n\r\n".encode() + value.content
        else:
            body += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            body += bytes(value) if isinstance(value, bytes) else value.encode()
        body += b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body)


def _path_value(value: Value) -> str:
    if isinstance(value, bytes):
        return quote_from_bytes(value, safe="")
    assert isinstance(value, str)
    return quote(value, safe="")


def _submission(
    form: ConsoleForm, values: Mapping[str, CaseValue], csrf: Sequence[str]
) -> tuple[str, list[tuple[str, Value]]]:
    """The address and the fields to send: path parameters (keyed ``{name}``) go into the address."""
    path_values: dict[str, Value] = {}
    pairs: list[tuple[str, Value]] = [("csrf_token", token) for token in csrf]
    for key, value in values.items():
        if isinstance(value, Missing):
            continue
        if key.startswith("{"):
            assert not isinstance(value, Twice | UploadedFile)
            path_values[key] = _path_value(value)
        elif isinstance(value, Twice):
            pairs += [(key, value.second), (key, value.second)]
        else:
            pairs.append((key, value))
    return form.path(path_values), pairs


def send(client: TestClient, form: ConsoleForm, values: Mapping[str, CaseValue], csrf: Sequence[str]) -> Any:
    path, pairs = _submission(form, values, csrf)
    if form.multipart:
        boundary = "hostile" + secrets.token_hex(8)
        body = _multipart(pairs, boundary)
        content_type = f"multipart/form-data; boundary={boundary}"
    else:
        body = _urlencoded(pairs)
        content_type = "application/x-www-form-urlencoded"
    return client.post(path, content=body, headers={"Content-Type": content_type})


# --- what changed --------------------------------------------------------------------------------------------


def snapshot(engine: Engine, *, sign_in: bool = False) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, but for what a page view (or, for sign-in, a refused attempt) writes."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if sign_in and table.name == SignInThrottle.__tablename__:
                continue
            columns = [column for column in table.columns if (table.name, column.name) not in IGNORED_COLUMNS]
            found = conn.execute(select(*columns).order_by(*table.primary_key.columns)).all()
            if sign_in and table.name == "audit_events":
                found = [row for row in found if row._mapping["action"] not in SIGN_IN_WRITES]
            rows[table.name] = [tuple(row) for row in found]
    return rows


def _changes(before: Mapping[str, list[tuple[Any, ...]]], after: Mapping[str, list[tuple[Any, ...]]]) -> str:
    changed = []
    for name, rows in after.items():
        if rows != before[name]:
            added = [row for row in rows if row not in before[name]]
            removed = [row for row in before[name] if row not in rows]
            changed.append(f"{name}: +{str(added)[:300]} -{str(removed)[:300]}")
    return "; ".join(changed)


def _forget_sign_in_attempts(engine: Engine) -> None:
    """A refused sign-in counts against the client's address; the next case starts with no count."""
    with engine.begin() as conn:
        conn.execute(delete(SignInThrottle))


# --- what the answer says ------------------------------------------------------------------------------------


def message_of(page: str) -> str:
    found = _ALERT.search(page)
    return html.unescape(_TAG.sub(" ", found.group(1))) if found else ""


def _problem(suite: Suite, answer: Any, value: CaseValue, words: Sequence[str]) -> str | None:
    """What is wrong with the answer to a hostile request, or None when it is a clear refusal."""
    status: int = answer.status_code
    page: str = answer.text
    if status >= 500:
        suite.server_errors.append(f"{answer.request.url}: {status}")
        return f"answered {status}: {message_of(page)[:200]}"
    if status < 400:
        return f"accepted ({status} {answer.headers.get('location', '')[:120]})"
    if not answer.headers.get("content-type", "").startswith("text/html"):
        return f"answered {answer.headers.get('content-type')}, not a page"
    if "Traceback" in page or SCRIPT in page:
        return "echoed a traceback or markup"
    shown = value.second if isinstance(value, Twice) else value
    if isinstance(shown, str) and "<" in shown and shown in page:
        return "echoed the value as markup"
    message = message_of(page)
    if not any(word.lower() in message.lower() for word in words):
        return f"{status} without naming {' or '.join(words)}: {message[:300]!r}"
    return None


def _try(
    suite: Suite,
    form: ConsoleForm,
    cases: Sequence[tuple[Case, Mapping[str, CaseValue]]],
    *,
    client: TestClient | None = None,
    csrf: Sequence[str] | None = None,
) -> list[str]:
    """Send each case; the problems found, each with its case's label."""
    problems: list[str] = []
    sign_in = not form.signed_in
    before = snapshot(suite.engine, sign_in=sign_in)
    for case, values in cases:
        if sign_in:
            page = suite.anonymous.get("/console/sign-in")
            tokens = [csrf_of(page.text)] if csrf is None else csrf
            answer = send(suite.anonymous, form, values, tokens)
        else:
            answer = send(client or suite.ann, form, values, [suite.ann_csrf] if csrf is None else csrf)
        suite.sent += 1
        problem = _problem(suite, answer, case.value, case.words or ())
        after = snapshot(suite.engine, sign_in=sign_in)
        if after != before:
            problem = (problem + "; " if problem else "") + "changed " + _changes(before, after)
            before = after
        if sign_in:
            _forget_sign_in_attempts(suite.engine)
        if problem:
            problems.append(f"{case.label}: {problem}")
    return problems


# --- the hostile values of each kind -------------------------------------------------------------------------


def _spliced(base: str, insert: str) -> str:
    middle = max(1, len(base) // 2)
    return base[:middle] + insert + base[middle:]


def _too_long(item: Field, base: str) -> str:
    """A value of the field's shape, one character past its limit."""
    assert item.limit is not None
    if item.kind is Kind.email:
        local = "x" * 64
        domain_length = item.limit + 1 - len(local) - 1
        labels = []
        while domain_length > 0:
            label = min(63, domain_length)
            labels.append("d" * label)
            domain_length -= label + 1
        address = local + "@" + ".".join(labels)
        return address + "e" * (item.limit + 1 - len(address))
    if item.kind is Kind.serials:
        return "\n".join(f"S{index:09d}" for index in range(item.limit + 1))
    return (base or "n") + "n" * (item.limit + 1 - len(base or "n"))


def _undecodable(base: str) -> list[Case]:
    """Bytes that are not UTF-8 inside the value: ``%FF``, and a lone surrogate as it would travel (U+D800 encoded
    as if it were a character; text cannot hold one, so these bytes are how one is sent)."""
    marked = _spliced(base or "x", "\uffff").encode()
    raw = marked.replace("\uffff".encode(), b"\xff")
    surrogate = marked.replace("\uffff".encode(), "\ud800".encode("utf-8", "surrogatepass"))
    return [Case("%FF (not UTF-8)", raw), Case("raw 0xFF byte", Raw(raw)), Case("lone surrogate U+D800", surrogate)]


def hostile_cases(form: ConsoleForm, item: Field, base: Value) -> list[Case]:
    """The hostile values for ``item``, built on its valid value ``base``."""
    if item.kind is Kind.file:
        return _file_cases(form, base)
    text_base = base if isinstance(base, str) else ""
    # In an address, an empty name, one with "/" and a "." or ".." resolve to another address: its page says so.
    moved = ("address",) if item.in_path else None
    cases = [Case(f"{name} inside", _spliced(text_base or "x", char)) for name, char in CONTROLS.items()]
    if item.kind not in (Kind.text, Kind.certificates, Kind.serials, Kind.password):
        cases.append(Case("NUL at the end", (text_base or "x") + "\x00"))
    cases += _undecodable(text_base)
    if item.in_path:
        cases = [case for case in cases if not isinstance(case.value, Raw)]
    if not item.in_path:
        cases.append(Case("100,000 characters", "x" * 100_000))
        cases.append(Case("past the body limit", "x" * (MAX_REQUEST_BYTES + 1), words=("larger than",)))
        if item.kind is not Kind.switches:  # one switch per pane shown: the name comes many times
            cases.append(Case("sent twice", Twice(base)))
    if item.limit is not None and item.kind is not Kind.file:
        cases.append(Case(f"one past the limit of {item.limit}", _too_long(item, text_base)))
    if item.required and not item.in_path:
        cases.append(Case("missing", Missing()))
    if item.required:
        cases.append(Case("empty", "", moved if item.in_path else None))
    if item.kind in (Kind.identifier, Kind.display_name, Kind.choice):
        cases += [Case(repr(name), name, moved) for name in (".", "..")]
    if item.kind in (Kind.identifier, Kind.display_name):
        cases += [Case("a/b", "a/b", moved), *(Case(repr(name), name) for name in ("-rf", "a?b", "a#b", "a\\b"))]
    if item.kind is Kind.display_name:
        cases.append(Case("only spaces", "   "))
    if item.kind is Kind.identifier:
        cases += [Case("a space", "a b"), Case("Büro", "Büro"), Case("markup", SCRIPT, moved)]
    if item.kind is Kind.email:
        cases += [
            Case("markup", SCRIPT, moved),
            Case("markup before @", "<script>@example.com"),
            Case("no dot in the domain", "x@y"),
            Case("no @", "not an address"),
        ]
    if item.kind is Kind.code:
        cases += [Case("markup", SCRIPT), Case("Arabic-Indic digits", "\u0663\u0664"), Case("too long", "english")]
    if item.kind is Kind.version:
        cases += [
            Case("markup", SCRIPT),
            Case("Arabic-Indic digits", "\u0661\u0667.\u0664"),
            Case("four numbers", "17.4.1.2"),
            Case("a number past the limit", "17.1000"),
            Case("an empty number", "17..4"),
            Case("a leading zero", "17.04"),
            Case("a sign", "-17"),
            Case("words", "iOS 17"),
        ]
    if item.kind in (Kind.choice, Kind.checkbox, Kind.switches):
        cases += [Case(f"number {name}", number) for name, number in NUMBERS.items()]
        cases += [Case("markup", SCRIPT), Case("not offered", "maybe")]
    if item.kind is Kind.choice and item.choices:
        offered = item.choices[0]
        cases += [Case("upper case", offered.upper()), Case("padded", f" {offered} ")]
    if item.kind is Kind.certificates:
        cases += [
            Case("not a certificate", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----"),
            Case("a PDF", "%PDF-1.4 not a certificate"),
            Case("markup", SCRIPT),
        ]
    if item.kind is Kind.serials:
        cases += [
            Case("markup", SCRIPT),
            Case("a 65-character serial", "S" * 65),
            Case("a path", "../../etc/passwd"),
            Case("an unknown serial", "NOSUCHSERIAL1"),
        ]
    if item.kind is Kind.password:
        cases += [Case("markup", SCRIPT), Case("wrong", "wrong horse battery staple")]
    if item.in_path:
        cases.append(Case("no such row", "nosuch" if item.kind is not Kind.email else "nobody@example.com"))
    return cases


def _file_cases(form: ConsoleForm, base: Value) -> list[Case]:
    assert isinstance(base, UploadedFile)
    content = base.content
    limit = next(item.limit for item in form.fields if item.kind is Kind.file)
    assert limit is not None
    return [
        Case("an empty file", UploadedFile(base.filename, b"")),
        Case("a truncated token", UploadedFile(base.filename, content[: len(content) // 2])),
        Case("one byte past the file limit", UploadedFile(base.filename, b"0" * (limit + 1))),
        Case(
            "past the body limit",
            UploadedFile(base.filename, b"0" * (MAX_REQUEST_BYTES + 1)),
            words=("larger than",),
        ),
        Case("binary noise", UploadedFile(base.filename, bytes(range(256)) * 16)),
        Case("a .pem instead", UploadedFile("acme.pem", content, "application/x-pem-file")),
        Case("a PDF named .p7m", UploadedFile(base.filename, b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")),
        Case("markup as the file name", UploadedFile(SCRIPT + ".pem", content)),
        Case("no file name", UploadedFile("", content)),
        Case("text instead of a file", "not a file"),
        Case("missing", Missing()),
        Case("sent twice", Twice(base)),
    ]


def _foreign_case(rows: Rows, base: Value) -> Case:
    assert isinstance(base, UploadedFile)
    return Case("a token for another key", UploadedFile(base.filename, rows.foreign_p7m))


# --- the tests -----------------------------------------------------------------------------------------------


def _routes(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """Each route's path and methods, through included routers (FastAPI keeps those as routes of their own that
    hold the router they include)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, set(route.methods or ())
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from _routes(included.routes, prefix + str(getattr(context, "prefix", "")))


def test_every_post_route_of_the_console_is_in_the_form_list(suite: Suite) -> None:
    console = mounted_app(suite.app, "/console")
    routes = list(_routes(console.routes))
    assert ("/sign-in", {"GET"}) in routes, "the walk reaches the console's routes"
    served = {f"/console{path}" for path, methods in routes if "POST" in methods}
    listed = {f"/console{form.route}" for form in FORMS}
    assert served - listed == set(), "forms without hostile tests: add them to tests/console/form_list.py"
    assert listed - served == set(), "forms listed that the console no longer serves"
    for form in FORMS:
        served_path = f"/console{form.route}"
        params = set(re.findall(r"{(\w+)}", served_path))
        assert params == {item.name for item in form.fields if item.in_path}, served_path


_FORM = re.compile(r'<form[^>]*\saction="([^"]*)"[^>]*>(.*?)</form>', re.S)


@pytest.mark.parametrize("form", [pytest.param(form, id=form.route.strip("/")) for form in FORMS if form.page])
def test_the_page_of_each_form_sends_the_fields_the_list_declares(suite: Suite, form: ConsoleForm) -> None:
    """A field added to a page's form without hostile tests fails here. (A page may leave out an optional field it
    does not need now: the relink switch of a token that is not yet connected.)"""
    valid = form.valid(suite.rows)
    path = unquote(form.path({item.key: _path_value(valid[item.key]) for item in form.fields if item.in_path}))
    client = suite.anonymous if not form.signed_in else suite.ann
    page = client.get(form.page)
    assert page.status_code == 200, (form.page, page.status_code)
    sent = [
        set(re.findall(r'name="([^"]+)"', inner))
        for action, inner in _FORM.findall(page.text)
        if unquote(html.unescape(action).partition("?")[0]) == path
    ]
    assert sent, f"{form.page} has no form posting to {path}"
    declared = {"csrf_token", *(item.name for item in form.fields if not item.in_path)}
    assert sent[0] <= declared, "fields without hostile tests: add them to tests/console/form_list.py"
    assert {item.name for item in form.fields if item.required and not item.in_path} <= sent[0]


_FIELD_CASES = [
    pytest.param(form, item, id=f"{form.route.strip('/')}-{item.name}{'-path' if item.in_path else ''}")
    for form in FORMS
    for item in form.fields
]


@pytest.mark.parametrize(("form", "item"), _FIELD_CASES)
def test_a_hostile_field_is_refused_by_name_and_changes_nothing(suite: Suite, form: ConsoleForm, item: Field) -> None:
    valid = {**form.valid(suite.rows), **item.context}
    base = valid.get(item.key, "")
    cases = hostile_cases(form, item, base)
    if item.kind is Kind.file:
        cases.append(_foreign_case(suite.rows, base))
    words = (*item.words, item.name)
    sent = [(Case(case.label, case.value, case.words or words), {**valid, item.key: case.value}) for case in cases]
    problems = _try(suite, form, sent)
    assert not problems, f"{form.route} {item.name}:\n" + "\n".join(problems)


_CSRF_WORDS = ("console page", "nothing was changed", "csrf_token")


@pytest.mark.parametrize("form", [pytest.param(form, id=form.route.strip("/")) for form in FORMS])
def test_a_form_without_its_sessions_csrf_token_changes_nothing(suite: Suite, form: ConsoleForm) -> None:
    valid = dict(form.valid(suite.rows))
    forged = {
        "no CSRF token": [],
        "an empty CSRF token": [""],
        "a made-up CSRF token": [secrets.token_hex(32)],
        "an oversized CSRF token": ["a" * 5000],
        "a CSRF token with NUL": ["\x00" * 64],
        "the CSRF token twice": None,  # filled below: the right token, then a wrong one
    }
    if form.signed_in:
        forged["another session's CSRF token"] = [suite.ann_again_csrf]
        forged["the CSRF token twice"] = [suite.ann_csrf, secrets.token_hex(32)]
    else:
        forged["a CSRF token that is not the cookie's"] = [secrets.token_hex(32)]
        forged.pop("the CSRF token twice")
    problems: list[str] = []
    for label, tokens in forged.items():
        assert tokens is not None
        problems += _try(suite, form, [(Case(label, "", _CSRF_WORDS), valid)], csrf=tokens)
    if form.signed_in and not form.read_only_may:
        read_only = Case("a read-only admin", "", ("read-only",))
        problems += _try(suite, form, [(read_only, valid)], client=suite.rita, csrf=[suite.rita_csrf])
    if form.signed_in:
        # No session: the sign-in page, before the form is read.
        before = snapshot(suite.engine)
        answer = send(suite.anonymous, form, valid, [suite.ann_csrf])
        suite.sent += 1
        if answer.status_code != 303 or not answer.headers["location"].startswith("/console/sign-in?next="):
            problems.append(f"no session: answered {answer.status_code}, not the sign-in page")
        if snapshot(suite.engine) != before:
            problems.append("no session: changed rows")
    assert not problems, f"{form.route}:\n" + "\n".join(problems)


@pytest.mark.parametrize("form", [pytest.param(form, id=form.route.strip("/")) for form in FORMS])
def test_values_at_each_limit_are_accepted(suite: Suite, form: ConsoleForm) -> None:
    """The accepting side of each boundary; these run last, and change rows as asked."""
    problems: list[str] = []
    for label, values in form.at_limits(suite.rows):
        before = snapshot(suite.engine)
        if not form.signed_in:
            client = suite.anonymous
            answer = send(client, form, values, [csrf_of(client.get("/console/sign-in").text)])
        elif form.read_only_may:
            client, token = _signed_in(suite.app, form_list.ADMIN)
            answer = send(client, form, values, [token])
        else:
            client = suite.ann
            answer = send(client, form, values, [suite.ann_csrf])
        if answer.status_code not in (200, 303):
            problems.append(f"{label}: refused with {answer.status_code}: {message_of(answer.text)[:300]!r}")
            continue
        if snapshot(suite.engine) == before:
            problems.append(f"{label}: answered {answer.status_code} but changed nothing")
        shown = client.get(answer.headers["location"]) if answer.status_code == 303 else answer
        if shown.status_code != 200 or SCRIPT in shown.text:
            problems.append(f"{label}: the page after it answered {shown.status_code}")
        if not form.signed_in:
            client.cookies.clear()
    assert not problems, f"{form.route}:\n" + "\n".join(problems)


def test_markup_in_free_text_is_kept_as_text_and_shown_escaped(suite: Suite) -> None:
    form = next(form for form in FORMS if form.route == "/profiles/{name}/edit")
    values = {**form.valid(suite.rows), "description": SCRIPT, "department": "<b>Sales</b> & Co"}
    answer = send(suite.ann, form, values, [suite.ann_csrf])
    assert answer.status_code == 303, message_of(answer.text)
    page = suite.ann.get(f"/console/profiles/{form_list.PROFILE}/edit").text
    assert SCRIPT not in page and "&lt;script&gt;alert(" in page
    assert "&lt;b&gt;Sales&lt;/b&gt; &amp; Co" in page
