"""The lifecycle routes: deleting a DEP token (preview, delete, refusals) and the admins' actions; translation
only (statuses, shapes, nothing changed on a refusal), the services are tested in tests/admin and tests/dep."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pippin.admin import sessions as session_service
from pippin.admin import users as user_service
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import AdminUser, AuditEvent, DEPToken, utcnow
from tests.actors import TEST_ACTOR
from tests.admin.throttling import block_account, blocked_counters, password_is
from tests.servers import quick_password_hashes
from tests.token_with_history import ACME_COUNTS, linked_enrollments, row_counts, seed_tokens

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_password_hashes(monkeypatch)


@pytest.fixture
def world(resources: ServerResources) -> None:
    with transaction(resources.session_factory) as session:
        seed_tokens(session)
        for email, role in (("ann@example.com", "admin"), ("rita@example.com", "read-only")):
            user_service.create_user(session, email=email, password=PASSWORD, role=role, actor=TEST_ACTOR)


def _counts(resources: ServerResources) -> dict[str, int]:
    with transaction(resources.session_factory) as session:
        return row_counts(session)


def _user(resources: ServerResources, email: str) -> dict[str, Any]:
    with transaction(resources.session_factory) as session:
        user = session.scalars(select(AdminUser).where(AdminUser.email == email)).one()
        return {"role": user.role, "disabled": user.disabled_at is not None, "hash": user.password_hash}


def test_the_deletion_preview_counts_and_the_delete_answers_with_what_went(
    client: TestClient, auth: dict[str, str], resources: ServerResources, world: None
) -> None:
    before = _counts(resources)
    preview = client.get("/api/v1/dep/tokens/acme/deletion", headers=auth)
    assert preview.status_code == 200
    assert {key: preview.json()[key] for key in ACME_COUNTS} == ACME_COUNTS and preview.json()["deleted"] is False
    assert _counts(resources) == before
    deleted = client.delete("/api/v1/dep/tokens/acme", headers=auth)
    assert deleted.status_code == 200, deleted.text
    body = deleted.json()
    assert {key: body[key] for key in ACME_COUNTS} == ACME_COUNTS and body["deleted"] is True
    assert "Nothing is sent to Apple" in body["apple"]
    assert client.get("/api/v1/dep/tokens/acme", headers=auth).status_code == 404
    with transaction(resources.session_factory) as session:
        assert linked_enrollments(session)["UDID-A3"] is None
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "dep.token.delete")).one()
        assert (event.actor, event.interface) == ("test-admin", "api")


@pytest.mark.parametrize(("name", "status"), [("ghost", 404), ("bad%20name", 400)])
def test_deleting_an_unknown_or_malformed_token_changes_nothing(
    client: TestClient, auth: dict[str, str], resources: ServerResources, world: None, name: str, status: int
) -> None:
    before = _counts(resources)
    for answer in (
        client.delete(f"/api/v1/dep/tokens/{name}", headers=auth),
        client.get(f"/api/v1/dep/tokens/{name}/deletion", headers=auth),
    ):
        assert answer.status_code == status and answer.json()["hint"]
    assert _counts(resources) == before


def test_a_running_sync_makes_the_delete_a_409_with_retry_after(
    client: TestClient, auth: dict[str, str], resources: ServerResources, world: None
) -> None:
    with transaction(resources.session_factory) as session:
        token = session.scalars(select(DEPToken).where(DEPToken.name == "acme")).one()
        token.sync_window_until = utcnow() + timedelta(minutes=5)
    before = _counts(resources)
    answer = client.delete("/api/v1/dep/tokens/acme", headers=auth)
    assert answer.status_code == 409 and answer.json()["error"] == "sync_window_closed"
    assert 1 <= int(answer.headers["Retry-After"]) <= 300
    assert _counts(resources) == before


def test_admins_are_listed_without_secrets(client: TestClient, auth: dict[str, str], world: None) -> None:
    listed = client.get("/api/v1/admins", headers=auth)
    assert listed.status_code == 200
    assert [(item["email"], item["role"], item["disabled_at"]) for item in listed.json()] == [
        ("ann@example.com", "admin", None),
        ("rita@example.com", "read-only", None),
    ]
    assert "password" not in listed.text and "argon2" not in listed.text


def test_disable_enable_unlock_and_role_answer_with_the_account(
    client: TestClient, auth: dict[str, str], resources: ServerResources, world: None
) -> None:
    with transaction(resources.session_factory) as session:
        rita = session.scalars(select(AdminUser).where(AdminUser.email == "rita@example.com")).one()
        block_account(session, resources.secret_box, "rita@example.com")
        _, cookie = session_service.start_session(session, user=rita, actor=TEST_ACTOR)
    disabled = client.post("/api/v1/admins/Rita@Example.com/disable", headers=auth)
    assert disabled.status_code == 200 and disabled.json()["disabled_at"] is not None
    with transaction(resources.session_factory) as session:
        assert session_service.find_session(session, cookie=cookie) is None
    assert client.post("/api/v1/admins/rita@example.com/enable", headers=auth).json()["disabled_at"] is None
    assert client.post("/api/v1/admins/rita@example.com/unlock", headers=auth).json()["email"] == "rita@example.com"
    with transaction(resources.session_factory) as session:
        assert blocked_counters(session, resources.secret_box, "rita@example.com") == 0
    promoted = client.put("/api/v1/admins/rita@example.com/role", json={"role": "admin"}, headers=auth)
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"


def test_a_password_reset_generates_one_shown_once_or_takes_the_one_given(
    client: TestClient, auth: dict[str, str], resources: ServerResources, world: None
) -> None:
    generated = client.post("/api/v1/admins/rita@example.com/password", headers=auth)
    assert generated.status_code == 200 and generated.headers["Cache-Control"] == "no-store"
    password = generated.json()["password"]
    with transaction(resources.session_factory) as session:
        assert password_is(session, "rita@example.com", password)
        details = [str(event.detail) for event in session.scalars(select(AuditEvent))]
    assert all(password not in detail for detail in details)
    given = client.post(
        "/api/v1/admins/rita@example.com/password", json={"password": "a brand new passphrase"}, headers=auth
    )
    assert given.status_code == 200 and given.json()["password"] is None


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/api/v1/admins/ann@example.com/disable", None, 409, "last_active_admin"),
        ("PUT", "/api/v1/admins/ann@example.com/role", {"role": "read-only"}, 409, "last_active_admin"),
        ("POST", "/api/v1/admins/ghost@example.com/disable", None, 404, "not_found"),
        ("POST", "/api/v1/admins/ghost@example.com/unlock", None, 404, "not_found"),
        ("POST", "/api/v1/admins/not-an-address/enable", None, 400, "invalid_input"),
        ("PUT", "/api/v1/admins/rita@example.com/role", {"role": "superuser"}, 422, "invalid_request"),
        ("POST", "/api/v1/admins/rita@example.com/password", {"password": "tiny-pw"}, 400, "invalid_input"),
        ("POST", "/api/v1/admins/rita@example.com/password", {"password": "x", "extra": 1}, 422, "invalid_request"),
    ],
)
def test_refusals_change_nothing(
    client: TestClient,
    auth: dict[str, str],
    resources: ServerResources,
    world: None,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    before = _counts(resources), _user(resources, "ann@example.com"), _user(resources, "rita@example.com")
    answer = client.request(method, path, json=body, headers=auth)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code and answer.json()["hint"]
    assert "tiny-pw" not in answer.text  # a refused password is never echoed
    after = _counts(resources), _user(resources, "ann@example.com"), _user(resources, "rita@example.com")
    assert after == before
