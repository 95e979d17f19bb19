"""The profile routes: translation only (statuses, shapes, hostile input); the services are tested apart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import DEPToken, Device
from tests.dep.test_assignment import ScriptedApple

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def fleet(resources: ServerResources) -> None:
    with transaction(resources.session_factory) as session:
        token = DEPToken(name="acme", status="ok")
        session.add(token)
        session.flush()
        for n in range(3):
            session.add(Device(serial_number=f"C0{n}", token_id=token.id, profile_status="empty", apple_record={}))


def test_profiles_need_an_admin_token(client: TestClient) -> None:
    assert client.get("/api/v1/profiles").status_code == 401
    assert client.post("/api/v1/profiles", json={"name": "Staff"}).status_code == 401


def test_create_read_update_delete(client: TestClient, auth: dict[str, str]) -> None:
    created = client.post(
        "/api/v1/profiles",
        json={"name": "Staff", "supervised": True, "locked": True, "skip_setup_items": ["Siri", "location"]},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["skip_setup_items"] == ["Location", "Siri"] and body["revision"] == 1
    assert {pane["key"]: pane["shown"] for pane in body["setup_panes"]}["Siri"] is False
    assert client.get("/api/v1/profiles", headers=auth).json()[0]["name"] == "Staff"
    assert client.get("/api/v1/profiles/Staff", headers=auth).json()["locked"] is True

    patched = client.patch("/api/v1/profiles/Staff", json={"department": "Sales"}, headers=auth)
    assert patched.status_code == 200 and patched.json()["revision"] == 2
    cleared = client.patch("/api/v1/profiles/Staff", json={"department": None}, headers=auth)
    assert cleared.json()["department"] is None and cleared.json()["revision"] == 3

    assert client.delete("/api/v1/profiles/Staff", headers=auth).status_code == 204
    assert client.get("/api/v1/profiles/Staff", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"name": "Staff", "locked": True}, 400, "FLAGS_INVALID"),
        ({"name": "x" * 126}, 400, "CONFIG_NAME_INVALID"),
        ({"name": "Staff", "skip_setup_items": ["NoSuchPane"]}, 400, "not a Setup Assistant pane"),
        ({"name": "Staff", "anchor_certs": ["garbage"]}, 400, "X.509"),
        ({"name": "Staff", "is_supervised": True}, 422, ""),
        ({"name": "Staff", "supervised": "very"}, 422, ""),
        ({"name": "Staff", "skip_setup_items": ["Siri"] * 201}, 422, ""),
        ({}, 422, ""),
    ],
)
def test_bad_profiles_are_refused_and_nothing_is_stored(
    client: TestClient, auth: dict[str, str], body: dict[str, object], status: int, text: str
) -> None:
    answer = client.post("/api/v1/profiles", json=body, headers=auth)
    assert answer.status_code == status, answer.text
    assert text in answer.text
    assert client.get("/api/v1/profiles", headers=auth).json() == []


def test_name_conflicts_and_unknown_profiles(client: TestClient, auth: dict[str, str]) -> None:
    assert client.post("/api/v1/profiles", json={"name": "Staff"}, headers=auth).status_code == 201
    assert client.post("/api/v1/profiles", json={"name": "Staff"}, headers=auth).status_code == 409
    assert client.patch("/api/v1/profiles/Nope", json={"department": "x"}, headers=auth).status_code == 404
    assert client.patch("/api/v1/profiles/Staff", json={"supervised": None}, headers=auth).status_code == 400
    assert client.delete("/api/v1/profiles/Nope", headers=auth).status_code == 404


def test_bad_names_are_a_documented_400(client: TestClient, auth: dict[str, str], fleet: None) -> None:
    answers = {
        ("/api/v1/profiles/{name}", "get"): client.get("/api/v1/profiles/a%0Ab", headers=auth),
        ("/api/v1/profiles/{name}", "delete"): client.delete("/api/v1/profiles/a%0Ab", headers=auth),
        ("/api/v1/profiles/defaults/{token}", "put"): client.put(
            "/api/v1/profiles/defaults/a%0Ab", json={"profile": "Staff"}, headers=auth
        ),
    }
    paths = client.get("/api/openapi.json").json()["paths"]
    for (path, method), answer in answers.items():
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_input", (path, method, answer.text)
        assert "400" in paths[path][method]["responses"], (path, method)


def test_assignments_are_queued_and_defaults_set(client: TestClient, auth: dict[str, str], fleet: None) -> None:
    assert client.post("/api/v1/profiles", json={"name": "Staff"}, headers=auth).status_code == 201
    unknown = client.post("/api/v1/profiles/Staff/assignments", json={"serials": ["C00", "nope"]}, headers=auth)
    assert unknown.status_code == 404 and "nope" in unknown.text
    queued = client.post("/api/v1/profiles/Staff/assignments", json={"all_unassigned": True}, headers=auth)
    assert queued.status_code == 202 and queued.json()["queued"] == 3
    assert client.get("/api/v1/profiles/Staff", headers=auth).json()["devices"]["pending"] == 3
    assert client.put("/api/v1/profiles/defaults/acme", json={"profile": "Staff"}, headers=auth).status_code == 204
    assert client.get("/api/v1/profiles/Staff", headers=auth).json()["default_for_tokens"] == ["acme"]
    assert client.put("/api/v1/profiles/defaults/nope", json={"profile": "Staff"}, headers=auth).status_code == 404
    assert client.delete("/api/v1/profiles/Staff", headers=auth).status_code == 409
    # The token has no credentials: nothing is sent, the devices stay queued and the token says why.
    due = client.post("/api/v1/profiles/retry-due", headers=auth)
    assert due.status_code == 202 and due.json() == {"due": 3}
    assert client.get("/api/v1/profiles/Staff", headers=auth).json()["devices"]["pending"] == 3
    token = client.get("/api/v1/dep/tokens/acme", headers=auth).json()
    assert "No server token" in token["last_error"]


class _Apple(ScriptedApple):
    """Apple for the server: assigns every serial, never pages devices (no sync runs here)."""


_APPLE = _Apple()


@pytest.mark.parametrize("server_clients", [{"open_dep_client": lambda _token: _APPLE}])
def test_an_assignment_and_a_new_revision_go_to_apple_after_the_answer_as_from_every_interface(
    client: TestClient, auth: dict[str, str], fleet: None
) -> None:
    _APPLE.defined.clear()
    _APPLE.assigned.clear()
    assert client.post("/api/v1/profiles", json={"name": "Staff"}, headers=auth).status_code == 201
    queued = client.post("/api/v1/profiles/Staff/assignments", json={"all_unassigned": True}, headers=auth)
    assert queued.status_code == 202 and queued.json()["queued"] == 3
    assert client.get("/api/v1/profiles/Staff", headers=auth).json()["devices"]["assigned"] == 3
    assert sorted(_APPLE.sent()) == ["C00", "C01", "C02"]
    edited = client.patch("/api/v1/profiles/Staff", json={"department": "Sales"}, headers=auth)
    assert edited.status_code == 200 and edited.json()["revision"] == 2
    devices = client.get("/api/v1/profiles/Staff", headers=auth).json()["devices"]
    assert devices["assigned"] == 3 and len(_APPLE.defined) == 2, "the new revision was defined and sent"


def test_the_minimum_os_version_is_read_and_written_and_keeps_the_revision(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = client.post("/api/v1/profiles", json={"name": "Staff", "minimum_os_version": "17.4"}, headers=auth)
    assert created.status_code == 201, created.text
    assert (created.json()["minimum_os_version"], created.json()["revision"]) == ("17.4", 1)
    patched = client.patch("/api/v1/profiles/Staff", json={"minimum_os_version": "18.1.1"}, headers=auth)
    assert (patched.json()["minimum_os_version"], patched.json()["revision"]) == ("18.1.1", 1)
    assert client.get("/api/v1/profiles/Staff", headers=auth).json()["minimum_os_version"] == "18.1.1"
    cleared = client.patch("/api/v1/profiles/Staff", json={"minimum_os_version": None}, headers=auth)
    assert (cleared.json()["minimum_os_version"], cleared.json()["revision"]) == (None, 1)
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]
    assert "not sent to Apple" in schema["ProfileRead"]["properties"]["minimum_os_version"]["description"]


@pytest.mark.parametrize(
    ("value", "status", "text"),
    [
        ("17.4.1.2", 400, "minimum_os_version"),
        ("17..4", 400, "minimum_os_version"),
        ("17.1000", 400, "minimum_os_version"),
        ("\u0661\u0667", 400, "minimum_os_version"),
        ("<script>alert(1)</script>", 400, "minimum_os_version"),
        ("9" * 10_000, 400, "minimum_os_version"),
        ("9" * 10_001, 422, "minimum_os_version"),
        ("17.4\u0000", 422, "minimum_os_version"),
        ("17.4\n", 422, "minimum_os_version"),
        (17.4, 422, "minimum_os_version"),
        (["17.4"], 422, "minimum_os_version"),
        ({"major": 17}, 422, "minimum_os_version"),
    ],
)
def test_a_bad_minimum_os_version_is_refused_naming_it_and_changes_nothing(
    client: TestClient, auth: dict[str, str], value: object, status: int, text: str
) -> None:
    answer = client.post("/api/v1/profiles", json={"name": "Staff", "minimum_os_version": value}, headers=auth)
    assert answer.status_code == status, answer.text
    assert text in answer.text and "<script>" not in answer.text
    assert client.get("/api/v1/profiles", headers=auth).json() == []
    assert client.post("/api/v1/profiles", json={"name": "Staff", "minimum_os_version": "17"}, headers=auth).is_success
    edited = client.patch("/api/v1/profiles/Staff", json={"minimum_os_version": value}, headers=auth)
    assert edited.status_code == status, edited.text
    assert client.get("/api/v1/profiles/Staff", headers=auth).json()["minimum_os_version"] == "17"
