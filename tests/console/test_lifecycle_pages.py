"""The console's Admins page and its actions, and deleting a DEP token after the page that counts what goes:
translation only (pages, statuses, CSRF, roles); refusals show where the admin acted and change nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pippin.admin import users as user_service
from pippin.console.notice import NOTICE_COOKIE
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import AdminUser, AuditEvent, DEPToken, utcnow
from tests.admin.throttling import block_account, blocked_counters
from tests.console.conftest import PASSWORD, SignIn, csrf_of, sign_in_with
from tests.token_with_history import linked_enrollments, row_counts, seed_tokens


@pytest.fixture
def world(resources: ServerResources) -> None:
    with transaction(resources.session_factory) as session:
        seed_tokens(session)


def _counts(resources: ServerResources) -> dict[str, int]:
    with transaction(resources.session_factory) as session:
        return row_counts(session)


def _account(resources: ServerResources, email: str) -> tuple[Any, ...]:
    with transaction(resources.session_factory) as session:
        user = session.scalars(select(AdminUser).where(AdminUser.email == email)).one()
        return user.role, user.disabled_at, user.password_hash


def _act(client: TestClient, action: str, **data: str) -> Any:
    """Post one of the Admins page's forms, with the CSRF token of the page as the admin sees it."""
    page = client.get("/console/admins")
    return client.post(action, data={"csrf_token": csrf_of(page.text), **data})


def test_the_admins_page_lists_accounts_with_their_state(ann: TestClient, resources: ServerResources) -> None:
    page = ann.get("/console/admins")
    assert page.status_code == 200
    assert "ann@example.com" in page.text and "rita@example.com" in page.text and "active" in page.text
    assert 'href="/console/admins" aria-current="page"' in page.text


def test_a_disabled_admin_is_signed_out_and_cannot_sign_in(
    ann: TestClient, sign_in: SignIn, anonymous: TestClient, resources: ServerResources
) -> None:
    rita = sign_in("rita@example.com")
    assert rita.get("/console/").status_code == 200
    done = _act(ann, f"/console/admins/{quote('rita@example.com')}/disable")
    assert done.status_code == 303 and done.headers["location"] == "/console/admins"
    assert rita.get("/console/").status_code == 303  # back to the sign-in page
    refused = sign_in_with(anonymous, "rita@example.com")
    assert getattr(refused, "status_code", None) == 403 and "disabled" in getattr(refused, "text", "")
    enabled = _act(ann, "/console/admins/rita@example.com/enable")
    assert enabled.status_code == 303
    assert getattr(sign_in_with(anonymous, "rita@example.com"), "status_code", None) == 303


def test_unlock_and_change_role(ann: TestClient, resources: ServerResources) -> None:
    with transaction(resources.session_factory) as session:
        block_account(session, resources.secret_box, "rita@example.com")
    assert _act(ann, "/console/admins/rita@example.com/unlock").status_code == 303
    with transaction(resources.session_factory) as session:
        assert blocked_counters(session, resources.secret_box, "rita@example.com") == 0
    assert _act(ann, "/console/admins/rita@example.com/role", role="admin").status_code == 303
    assert _account(resources, "rita@example.com")[0] == "admin"
    with transaction(resources.session_factory) as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.interface == "console")).all()
    assert actions[-2:] == ["admin.user.unlock", "admin.user.set_role"]


def test_a_password_reset_shows_the_generated_password_once(
    ann: TestClient, anonymous: TestClient, resources: ServerResources
) -> None:
    shown = _act(ann, "/console/admins/rita@example.com/password")
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    assert NOTICE_COOKIE not in shown.headers.get("set-cookie", "")
    password = shown.text.split('<code id="new-password">')[1].split("</code>")[0]
    assert len(password) >= user_service.MIN_PASSWORD_CHARS
    assert getattr(sign_in_with(anonymous, "rita@example.com", PASSWORD), "status_code", None) == 400
    assert getattr(sign_in_with(anonymous, "rita@example.com", password), "status_code", None) == 303
    assert password not in ann.get("/console/audit").text


@pytest.mark.parametrize(
    ("action", "data", "status", "says"),
    [
        ("/console/admins/ann@example.com/disable", {}, 409, "last active admin"),
        ("/console/admins/ann@example.com/role", {"role": "read-only"}, 409, "last active admin"),
        ("/console/admins/rita@example.com/role", {"role": "superuser"}, 400, "Unknown role"),
        ("/console/admins/ghost@example.com/disable", {}, 404, "There is no admin"),
        ("/console/admins/ghost@example.com/password", {}, 404, "There is no admin"),
        ("/console/admins/not-an-address/unlock", {}, 400, "not an e-mail address"),
    ],
)
def test_refusals_show_on_the_page_and_change_nothing(
    ann: TestClient, resources: ServerResources, action: str, data: dict[str, str], status: int, says: str
) -> None:
    before = _counts(resources), _account(resources, "ann@example.com"), _account(resources, "rita@example.com")
    refused = _act(ann, action, **data)
    assert refused.status_code == status and says in refused.text and "Traceback" not in refused.text
    after = _counts(resources), _account(resources, "ann@example.com"), _account(resources, "rita@example.com")
    assert after == before


def test_read_only_admins_and_forged_forms_change_nothing(
    ann: TestClient, rita: TestClient, resources: ServerResources
) -> None:
    before = _counts(resources), _account(resources, "ann@example.com"), _account(resources, "rita@example.com")
    page = rita.get("/console/admins")
    assert page.status_code == 200 and "Reset password" not in page.text
    for action in ("disable", "password"):
        refused = rita.post(f"/console/admins/ann@example.com/{action}", data={"csrf_token": csrf_of(page.text)})
        assert refused.status_code == 403 and "read-only" in refused.text
        forged = ann.post(f"/console/admins/rita@example.com/{action}", data={"csrf_token": "0" * 64})
        assert forged.status_code == 403
    after = _counts(resources), _account(resources, "ann@example.com"), _account(resources, "rita@example.com")
    assert after == before


def test_deleting_a_token_goes_through_a_page_that_counts_what_goes(
    ann: TestClient, resources: ServerResources, world: None
) -> None:
    assert 'href="/console/tokens/acme/delete"' in ann.get("/console/tokens/acme").text
    before = _counts(resources)
    confirm = ann.get("/console/tokens/acme/delete")
    assert confirm.status_code == 200 and _counts(resources) == before
    for shown in ("<strong>4</strong> device records", "<strong>3</strong> sync runs", "(Staff)", "Nothing is sent"):
        assert shown in confirm.text, shown
    assert "<strong>2</strong> enrollments of these devices are kept" in confirm.text
    done = ann.post("/console/tokens/acme/delete", data={"csrf_token": csrf_of(confirm.text)})
    assert done.status_code == 303 and done.headers["location"] == "/console/tokens"
    assert "4 device records" in ann.get("/console/tokens").text
    with transaction(resources.session_factory) as session:
        assert session.scalars(select(DEPToken.name)).all() == ["other"]
        assert linked_enrollments(session)["UDID-A3"] is None


def test_a_token_deletion_refused_changes_nothing(
    ann: TestClient, rita: TestClient, resources: ServerResources, world: None
) -> None:
    before = _counts(resources)
    page = ann.get("/console/tokens/acme/delete")
    assert ann.post("/console/tokens/acme/delete", data={"csrf_token": "0" * 64}).status_code == 403
    rita_page = rita.get("/console/tokens/acme/delete")
    assert 'id="delete-token" disabled' in rita_page.text
    assert rita.post("/console/tokens/acme/delete", data={"csrf_token": csrf_of(rita_page.text)}).status_code == 403
    assert ann.get("/console/tokens/ghost/delete").status_code == 404
    assert ann.post("/console/tokens/ghost/delete", data={"csrf_token": csrf_of(page.text)}).status_code == 404
    with transaction(resources.session_factory) as session:
        token = session.scalars(select(DEPToken).where(DEPToken.name == "acme")).one()
        token.sync_window_until = utcnow() + timedelta(minutes=5)
    running = ann.post("/console/tokens/acme/delete", data={"csrf_token": csrf_of(page.text)})
    assert running.status_code == 409 and "already running" in running.text and "<strong>4</strong>" in running.text
    assert _counts(resources) == before
