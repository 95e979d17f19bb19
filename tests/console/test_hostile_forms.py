"""Hostile input to the console forms the other console tests leave out: sign-in, renewal, Sync now, the token
upload's Apple ID, profile edits, anchor certificates, control characters in any text, names that would not work
in a URL, and bodies past the size limit.

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
from pippin.store.models import AdminSession, AuditEvent, DEPProfile, DEPToken, SyncRun
from pippin.text import MAX_DEP_TOKEN_NAME
from tests.console.conftest import PASSWORD, csrf_of

SCRIPT = "<script>alert(1)</script>"
#: One of each kind of character the text rule refuses: NUL, ESC, a bidi override, a zero-width space, a line separator.
CONTROLS = ["\x00", "\x1b", "\u202e", "\u200b", "\u2028"]
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


def _sign_in_attempt(client: TestClient, **fields: str) -> Any:
    form = client.get("/console/sign-in")
    return client.post("/console/sign-in", data={"csrf_token": csrf_of(form.text), **fields})


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "ann@example.com" + "x" * 400, "password": PASSWORD},
        {"email": "ann@example.com", "password": "p" * 5000},
        {"email": SCRIPT, "password": PASSWORD},
        {"email": "", "password": ""},
        {"password": PASSWORD},
        {"email": "a\x00b@example.com", "password": PASSWORD},
        {"email": "ann@example.com\u202e", "password": PASSWORD},
        {"email": "ann@example.com", "password": "\x00" * 20},
    ],
)
def test_hostile_sign_ins_start_no_session(
    anonymous: TestClient, admins: None, resources: ServerResources, fields: dict[str, str]
) -> None:
    _refused(_sign_in_attempt(anonymous, **fields), (400,))
    assert "pippin_session" not in anonymous.cookies
    with transaction(resources.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(AdminSession)) == 0


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("/console/tokens/acme/keypair", {}),
        ("/console/tokens/acme/sync", {"full": "true"}),
        ("/console/tokens/acme/upload", {"apple_id": "ann@example.com"}),
        ("/console/tokens/acme/default-profile", {"profile": "Staff"}),
        ("/console/profiles/Staff/edit", {"name": "Staff", "description": "changed"}),
        ("/console/profiles/Staff/assign", {"which": "unassigned"}),
        ("/console/profiles/new", {"name": "Other"}),
        ("/console/tokens/new", {"name": "other"}),
    ],
)
def test_every_changing_form_refuses_a_read_only_admin_and_a_missing_csrf_token(
    ann: TestClient, rita: TestClient, existing: None, resources: ServerResources, action: str, data: dict[str, str]
) -> None:
    before = _state(resources)
    page = rita.get("/console/")
    assert "read-only" in _refused(rita.post(action, data={**data, "csrf_token": csrf_of(page.text)}), (403,))
    for forged in ({}, {"csrf_token": ""}, {"csrf_token": csrf_of(page.text)}):  # rita's token is not ann's
        assert "nothing was changed" in _refused(ann.post(action, data={**data, **forged}), (403,)).lower()
    assert _state(resources) == before


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "Staff", "description": "d" * 10_001},
        {"name": "Staff", "department": SCRIPT * 2000},
        {"name": SCRIPT},
        {"name": ""},
        {"name": "Staff", "user_affinity": "everyone"},
        {"name": "Staff", "support_email": "not an address"},
        {"name": "Staff", "language": SCRIPT},
        {"name": "Staff", "locked": "true"},
        {"name": "Staff", "anchor_certs": "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----"},
        {"name": "Staff", "anchor_certs": "%PDF-1.4 this is a PDF, not a certificate"},
        *({"name": f"Sta{char}ff"} for char in CONTROLS),
        *({"name": "Staff", "department": f"Sa{char}les"} for char in CONTROLS),
        *({"name": "Staff", "description": f"phones{char}"} for char in CONTROLS),
        {"name": "Staff", "support_email": "it\x00@example.com"},
        {"name": "Staff", "anchor_certs": "-----BEGIN CERTIFICATE-----\x00\n-----END CERTIFICATE-----"},
        {"name": "a/b"},
        {"name": "what?"},
        {"name": "#1"},
        {"name": ".."},
        {"name": "-rf"},
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


@pytest.mark.parametrize(
    "apple_id",
    ["x" * 400 + "@example.com", SCRIPT, "", "a\x00@x.com", "<script>@x.com", "x@y", "it@example.com\u202e"],
)
def test_a_hostile_apple_id_stores_no_token(
    ann: TestClient, existing: None, resources: ServerResources, apple_id: str
) -> None:
    before = _state(resources)
    page = ann.get("/console/tokens/acme/connect")
    answer = ann.post(
        "/console/tokens/acme/upload",
        data={"apple_id": apple_id, "csrf_token": csrf_of(page.text)},
        files={"token": ("acme_smime.p7m", b"0\x82\x01\x00" + b"\x00" * 200, "application/pkcs7-mime")},
    )
    _refused(answer, (400,))
    assert _state(resources) == before


@pytest.mark.parametrize("full", [SCRIPT, "maybe", "1" * 5000])
def test_sync_now_with_a_hostile_full_flag_starts_nothing(
    ann: TestClient, existing: None, resources: ServerResources, full: str
) -> None:
    before = _state(resources)
    page = ann.get("/console/tokens/acme")
    _refused(ann.post("/console/tokens/acme/sync", data={"full": full, "csrf_token": csrf_of(page.text)}), (400,))
    assert _state(resources) == before


def test_a_body_past_the_size_limit_is_refused_before_it_is_read(
    ann: TestClient, existing: None, resources: ServerResources
) -> None:
    before = _state(resources)
    page = ann.get("/console/profiles/Staff/edit")
    answer = ann.post(
        "/console/profiles/Staff/edit",
        data={"name": "Staff", "description": "x" * (2 * 1024 * 1024), "csrf_token": csrf_of(page.text)},
    )
    assert answer.status_code == 413 and "Traceback" not in answer.text
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
    ("action", "data"),
    [
        ("/console/profiles/Sta%00ff/edit", {"name": "Staff"}),
        ("/console/profiles/Sta%00ff/assign", {"which": "unassigned"}),
        ("/console/profiles/Staff/assign", {"which": "token", "token": "ac\x00me"}),
        ("/console/profiles/Staff/assign", {"which": "serials", "serials": "C01\x00"}),
        ("/console/tokens/ac%00me/keypair", {}),
        ("/console/tokens/ac%00me/sync", {}),
        ("/console/tokens/acme/default-profile", {"profile": "Sta\x00ff"}),
        ("/console/tokens/new", {"name": "ac\x00me"}),
    ],
)
def test_a_control_character_in_any_form_or_form_address_changes_nothing(
    ann: TestClient, existing: None, resources: ServerResources, action: str, data: dict[str, str]
) -> None:
    before = _state(resources)
    page = ann.get("/console/profiles/Staff")
    _refused(ann.post(action, data={**data, "csrf_token": csrf_of(page.text)}), (400,))
    assert _state(resources) == before


@pytest.mark.parametrize("name", ["n" * (MAX_DEP_TOKEN_NAME + 1), "n" * 64, ".", "..", "-", "-x", "a b", "Büro"])
def test_a_token_name_that_cannot_work_everywhere_is_refused_with_the_rule(
    ann: TestClient, resources: ServerResources, name: str
) -> None:
    before = _state(resources)
    page = ann.get("/console/tokens/new")
    answer = ann.post("/console/tokens/new", data={"name": name, "csrf_token": csrf_of(page.text)})
    assert f"1-{MAX_DEP_TOKEN_NAME} letters" in _refused(answer, (400,))
    assert _state(resources) == before


def test_a_token_name_at_the_certificate_limit_is_made(ann: TestClient, resources: ServerResources) -> None:
    name = "n" * MAX_DEP_TOKEN_NAME
    page = ann.get("/console/tokens/new")
    answer = ann.post("/console/tokens/new", data={"name": name, "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303 and answer.headers["location"] == f"/console/tokens/{name}/connect"
    assert ann.get(f"/console/tokens/{name}/public-key.pem").status_code == 200


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


#: Every console form that changes something, and sign-out.
CHANGING_ACTIONS = [
    "/console/tokens/new",
    "/console/tokens/acme/keypair",
    "/console/tokens/acme/sync",
    "/console/tokens/acme/upload",
    "/console/tokens/acme/default-profile",
    "/console/profiles/new",
    "/console/profiles/Staff/edit",
    "/console/profiles/Staff/assign",
    "/console/sign-out",
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
