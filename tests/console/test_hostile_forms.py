"""Hostile input to the console that ``test_every_form.py`` (every field of every form, from one list) leaves
out: page addresses and query strings of the pages that show things, a rule across two profile fields, a sync of
a token without Apple's file, names in any script, and form bodies the parser cannot read.

Each gets a clear page (never a traceback, never the input echoed as markup) and changes nothing: no row, no
revision, no audit event.
"""

# Names in other scripts and with en dashes are what some of these tests are about.
# ruff: noqa: RUF001

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import AuditEvent, DEPProfile, DEPToken, SyncRun
from tests.console.conftest import csrf_of
from tests.console.form_list import FORMS, Rows

SCRIPT = "<script>alert(1)</script>"
_RULE = "control, format or separator characters"


@pytest.fixture
def existing(ann: TestClient, resources: ServerResources) -> None:
    """A token awaiting Apple's file and a profile, made through the console."""
    for page, action, data in (
        ("/console/tokens/new", "/console/tokens/new", {"name": "acme"}),
        ("/console/profiles/new", "/console/profiles/new", {"name": "Staff", "description": "phones"}),
    ):
        answer = ann.post(action, data={**data, "csrf_token": csrf_of(ann.get(page).text)})
        assert answer.status_code == 303, answer.text


def _state(resources: ServerResources) -> dict[str, Any]:
    """Everything a form could change."""
    with transaction(resources.session_factory) as session:
        token = session.scalars(select(DEPToken)).one_or_none()
        profile = session.scalars(select(DEPProfile)).one_or_none()
        return {
            "tokens": session.scalar(select(func.count()).select_from(DEPToken)),
            "pending_key": token.pending_certificate_pem if token else None,
            "credentials": token.credentials_encrypted if token else None,
            "profile": (profile.name, profile.revision, profile.description) if profile else None,
            "profiles": session.scalar(select(func.count()).select_from(DEPProfile)),
            "syncs": session.scalar(select(func.count()).select_from(SyncRun)),
            "events": session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action != "admin.sign_in")
            ),
        }


def _refused(answer: Any, statuses: tuple[int, ...]) -> str:
    text: str = answer.text
    assert answer.status_code in statuses, (answer.status_code, text[:500])
    assert answer.headers["content-type"].startswith("text/html")
    assert "Traceback" not in text and SCRIPT not in text
    return text


@pytest.mark.parametrize(
    "fields",
    [
        # Markup is allowed in a name: stored as text and shown escaped.
        {"name": SCRIPT},
        # A rule across two fields: a locked profile must be supervised.
        {"name": "Staff", "locked": "true"},
    ],
)
def test_hostile_profile_edits_change_nothing(
    ann: TestClient, existing: None, resources: ServerResources, fields: dict[str, str]
) -> None:
    before = _state(resources)
    page = ann.get("/console/profiles/Staff/edit")
    answer = ann.post("/console/profiles/Staff/edit", data={**fields, "csrf_token": csrf_of(page.text)})
    if answer.status_code == 303:
        # Text that is allowed (a name with markup characters) is stored as text and shown escaped.
        shown = ann.get(answer.headers["location"]).text
        assert SCRIPT not in shown and "&lt;script&gt;" in shown
        return
    assert 'role="alert"' in _refused(answer, (400,))
    assert _state(resources) == before


def test_a_sync_of_a_token_without_apples_file_is_explained_where_the_admin_clicked(
    ann: TestClient, existing: None, resources: ServerResources
) -> None:
    before = _state(resources)
    page = ann.get("/console/tokens/acme")
    answer = ann.post("/console/tokens/acme/sync", data={"csrf_token": csrf_of(page.text)})
    assert "no server token from Apple yet" in _refused(answer, (409,))
    assert _state(resources) == before


@pytest.mark.parametrize(
    "path",
    [
        "/console/devices?q=%00",
        "/console/devices?q=a%E2%80%AEb",
        "/console/devices?token=%00",
        "/console/devices?profile=%00",
        "/console/devices/%00",
        "/console/profiles/%00",
        "/console/profiles/Sta%00ff/edit",
        "/console/tokens/%00",
        "/console/tokens/ac%00me/connect",
        "/console/tokens/ac%1Bme/public-key.pem",
        "/console/audit?actor=%00",
    ],
)
def test_a_control_character_in_a_page_address_is_a_clear_page_never_a_500(
    ann: TestClient, existing: None, path: str
) -> None:
    text = _refused(ann.get(path), (400,))
    assert _RULE in text


def test_a_control_character_in_a_device_page_cursor_is_refused_as_a_cursor(ann: TestClient, existing: None) -> None:
    assert "without a cursor" in _refused(ann.get("/console/devices?after=%00"), (400,))


@pytest.mark.parametrize(
    "name",
    [
        "Büro Zürich",
        "100% & more",
        "Ça va!",
        "Büro – iPads 東京",
        "Équipe – Paris",
        "iPads 📱 👩‍💻",
    ],
)
def test_a_profile_named_in_any_script_works_in_every_console_page(
    ann: TestClient, existing: None, resources: ServerResources, name: str
) -> None:
    page = ann.get("/console/profiles/new")
    created = ann.post("/console/profiles/new", data={"name": name, "csrf_token": csrf_of(page.text)})
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    assert location == f"/console/profiles/{quote(name, safe='')}"
    shown = ann.get(location)
    assert shown.status_code == 200 and name.replace("&", "&amp;") in shown.text
    edit = ann.get(f"{location}/edit")
    assert edit.status_code == 200
    saved = ann.post(f"{location}/edit", data={"name": name, "department": "Sales", "csrf_token": csrf_of(edit.text)})
    assert saved.status_code == 303 and saved.headers["location"] == location, saved.text
    default = ann.post("/console/tokens/acme/default-profile", data={"profile": name, "csrf_token": csrf_of(edit.text)})
    assert default.status_code == 303, default.text
    listed = ann.get("/console/profiles").text
    assert f'href="{location}"' in listed


@pytest.mark.parametrize(
    "before",
    ["9223372036854775808", "2147483648", "9" * 5000, "+5", " 5", "5.0", "05", "5_0", "-1", "0", "", "\u0665"],
)
def test_an_audit_page_number_that_is_not_plain_digits_the_database_holds_is_refused(
    ann: TestClient, existing: None, resources: ServerResources, before: str
) -> None:
    state = _state(resources)
    text = _refused(ann.get("/console/audit", params={"before": before}), (400,))
    assert "before" in text and "Nothing was changed" in text
    assert _state(resources) == state


def test_an_audit_page_number_in_plain_digits_is_taken(ann: TestClient, existing: None) -> None:
    page = ann.get("/console/audit", params={"before": "2147483647"})
    assert page.status_code == 200 and "profile.create" in page.text
    assert "profile.create" not in ann.get("/console/audit", params={"before": "1"}).text


_NO_ROWS = Rows(p7m=b"", foreign_p7m=b"", serial="C0")
#: Every console form for signed-in admins, from the one list of forms, at the addresses of its valid submission.
CHANGING_ACTIONS = [
    form.path({item.key: quote(str(form.valid(_NO_ROWS)[item.key]), safe="") for item in form.fields if item.in_path})
    for form in FORMS
    if form.signed_in
]
#: Bodies the form parser refuses: with no session they must never be read.
UNREADABLE_FORMS = {
    "multipart without boundary": ({"Content-Type": "multipart/form-data"}, b"--x\r\n"),
    "multipart garbage": ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x\r\nno headers\r\n\r\n"),
    "too many fields": ({"Content-Type": "application/x-www-form-urlencoded"}, b"&".join([b"a=1"] * 1500)),
}


@pytest.mark.parametrize("case", list(UNREADABLE_FORMS))
def test_a_post_without_a_session_goes_to_sign_in_before_its_form_is_read(
    anonymous: TestClient, ann: TestClient, existing: None, resources: ServerResources, case: str
) -> None:
    before = _state(resources)
    headers, body = UNREADABLE_FORMS[case]
    for action in CHANGING_ACTIONS:
        answer = anonymous.post(action, content=body, headers=headers)
        assert answer.status_code == 303, (action, answer.status_code, answer.text[:300])
        assert answer.headers["location"].startswith("/console/sign-in?next="), action
    assert _state(resources) == before


@pytest.mark.parametrize("case", list(UNREADABLE_FORMS))
def test_a_signed_in_post_that_cannot_be_read_is_a_page_saying_so(
    ann: TestClient, existing: None, resources: ServerResources, case: str
) -> None:
    before = _state(resources)
    headers, body = UNREADABLE_FORMS[case]
    for action in CHANGING_ACTIONS:
        answer = ann.post(action, content=body, headers=headers)
        _refused(answer, (400, 403))
    assert _state(resources) == before
