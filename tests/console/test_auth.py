"""Sign-in, sessions, CSRF and roles in the console, as a browser meets them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pippin.admin import sign_in_throttle as throttle
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import AdminSession, AuditEvent
from tests.actors import TEST_ACTOR
from tests.console.conftest import PASSWORD, csrf_of, sign_in_with


def test_pages_need_a_signed_in_admin(anonymous: TestClient) -> None:
    for path in ("/console/", "/console/audit"):
        answer = anonymous.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/sign-in?next=")
    assert anonymous.get("/").headers["location"] == "/console/"


def test_signing_in_sets_a_secure_session_cookie_and_records_it(
    anonymous: TestClient, admins: None, resources: ServerResources
) -> None:
    answer = sign_in_with(anonymous, "Ann@Example.com")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"  # type: ignore[attr-defined]
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and "pippin_session=" in v)  # type: ignore[attr-defined]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    page = anonymous.get("/console/")
    assert page.status_code == 200 and "ann@example.com" in page.text
    with transaction(resources.session_factory) as session:
        stored = session.scalars(select(AdminSession)).one()
        assert stored.token_sha256 not in cookie  # only the hash is stored
        event = session.scalars(select(AuditEvent).where(AuditEvent.actor != TEST_ACTOR.name)).one()
        assert (event.actor, event.action, event.interface) == ("ann@example.com", "admin.sign_in", "console")


def test_the_cookie_is_secure_over_https(app: object, admins: None) -> None:
    with TestClient(app, base_url="https://pippin.example", follow_redirects=False) as client:  # type: ignore[arg-type]
        answer = sign_in_with(client, "ann@example.com")
        cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and "pippin_session=" in v)  # type: ignore[attr-defined]
        assert "Secure" in cookie


def test_a_wrong_password_shows_the_form_again_with_the_reason(anonymous: TestClient, admins: None) -> None:
    answer = sign_in_with(anonymous, "ann@example.com", "wrong password!")
    assert answer.status_code == 400  # type: ignore[attr-defined]
    assert "The e-mail address or the password is wrong." in answer.text  # type: ignore[attr-defined]
    assert 'value="ann@example.com"' in answer.text  # type: ignore[attr-defined]
    assert "pippin_session" not in anonymous.cookies


def test_repeated_failures_pause_sign_in_from_that_address(anonymous: TestClient, admins: None) -> None:
    for _ in range(throttle.ACCOUNT_ADDRESS_LIMIT):
        assert sign_in_with(anonymous, "ann@example.com", "wrong password!").status_code == 400  # type: ignore[attr-defined]
    paused = sign_in_with(anonymous, "ann@example.com", PASSWORD)
    assert paused.status_code == 429 and "Too many sign-in attempts" in paused.text  # type: ignore[attr-defined]
    assert paused.headers["retry-after"] == str(int(throttle.BLOCK.total_seconds()))  # type: ignore[attr-defined]
    assert "pippin_session" not in anonymous.cookies


def test_sign_in_without_its_csrf_cookie_is_refused(anonymous: TestClient, admins: None) -> None:
    answer = anonymous.post(
        "/console/sign-in", data={"email": "ann@example.com", "password": PASSWORD, "csrf_token": "forged" * 5}
    )
    assert answer.status_code == 403 and "Reload the page" in answer.text
    assert "pippin_session" not in anonymous.cookies


def test_next_never_leaves_the_console(anonymous: TestClient, admins: None) -> None:
    form = anonymous.get("/console/sign-in")
    for target in ("https://evil.example/", "//evil.example/", "/console/audit"):
        anonymous.cookies.clear()
        form = anonymous.get("/console/sign-in")
        answer = anonymous.post(
            f"/console/sign-in?next={target}",
            data={"email": "ann@example.com", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        )
        expected = target if target == "/console/audit" else "/console/"
        assert answer.headers["location"] == expected


def test_signing_out_ends_the_session_server_side(ann: TestClient, resources: ServerResources) -> None:
    cookie = ann.cookies.get("pippin_session")
    page = ann.get("/console/")
    answer = ann.post("/console/sign-out", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"
    ann.cookies.set("pippin_session", str(cookie))  # a copied cookie no longer works either
    assert ann.get("/console/").status_code == 303
    with transaction(resources.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(AdminSession)) == 0


def test_sign_out_without_the_csrf_token_is_refused(ann: TestClient) -> None:
    assert ann.post("/console/sign-out", data={}).status_code == 403
    assert ann.get("/console/").status_code == 200


def test_a_forged_session_cookie_is_treated_as_signed_out(anonymous: TestClient) -> None:
    for value in ("x", "a" * 5000, "Zm9v"):
        anonymous.cookies.set("pippin_session", value)
        assert anonymous.get("/console/").status_code == 303


def test_errors_are_pages_not_tracebacks(ann: TestClient) -> None:
    missing = ann.get("/console/no-such-page")
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert "Traceback" not in missing.text and missing.headers["content-type"].startswith("text/html")
