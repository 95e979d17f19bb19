"""Requests the API cannot mean one way: lenient or oversized numbers, JSON with a key twice, contradictory
fields, and bodies from clients that are not signed in.

Each is refused with a clear answer naming the field (422 for the shape, 400 for the content, 401 before any
body is read) and changes nothing: no row, no revision, no audit event.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pippin.server.integers import MAX_DB_INTEGER
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import AuditEvent, DEPProfile, DEPToken, Device, SyncRun, TokenDefaultProfile

#: Numbers a lenient parser reads as 5 (or as some number): none is written as plain decimal digits.
LENIENT_NUMBERS = ["+5", " 5", "5 ", "5.0", "05", "5_0", "0x5", "5e0", "-5", "", "\u0665"]
#: Plain digits past what the database's integer columns hold.
OVERSIZED_NUMBERS = [str(MAX_DB_INTEGER + 1), "9223372036854775808", "9" * 5000]


@pytest.fixture
def fleet(resources: ServerResources) -> None:
    """A token ``acme`` with three devices and a profile ``Staff``."""
    with transaction(resources.session_factory) as session:
        token = DEPToken(name="acme", status="ok")
        session.add(token)
        session.flush()
        for n in range(3):
            session.add(Device(serial_number=f"C0{n}", token_id=token.id, profile_status="empty", apple_record={}))


@pytest.fixture
def staff(client: TestClient, auth: dict[str, str], fleet: None) -> None:
    assert client.post("/api/v1/profiles", json={"name": "Staff"}, headers=auth).status_code == 201


def _state(resources: ServerResources) -> dict[str, Any]:
    """Everything a request could change."""
    with transaction(resources.session_factory) as session:
        return {
            "profiles": sorted(
                (profile.name, profile.revision, profile.description, profile.department)
                for profile in session.scalars(select(DEPProfile))
            ),
            "assigned": sorted(
                (device.serial_number, device.assigned_profile_id, device.assignment_status)
                for device in session.scalars(select(Device))
            ),
            "defaults": session.scalar(select(func.count()).select_from(TokenDefaultProfile)),
            "syncs": session.scalar(select(func.count()).select_from(SyncRun)),
            "events": session.scalar(select(func.count()).select_from(AuditEvent)),
        }


def _refused(answer: Any, status: int, location: str) -> dict[str, Any]:
    """The answer is ``status`` in the API's error shape and names ``location`` (e.g. ``query.limit``)."""
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["error"] in ("invalid_request", "invalid_input"), body
    assert location in body["message"], body
    assert "Traceback" not in answer.text
    return body


def _integer_parameters(client: TestClient) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(method, path, where, parameter, schema) of every integer query or path parameter under /api/v1."""
    found = []
    for path, operations in client.get("/api/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schemas = parameter["schema"].get("anyOf", [parameter["schema"]])
                for schema in schemas:
                    if schema.get("type") == "integer" and path.startswith("/api/v1"):
                        found.append((method.upper(), path, parameter["in"], parameter["name"], schema))
    return found


def _asking(method: str, path: str, where: str, name: str, number: str) -> tuple[str, str, dict[str, str]]:
    """The request that gives ``number`` as the parameter, every other path parameter a plain name."""
    if where == "path":
        path = path.replace("{" + name + "}", quote(number, safe=""))
    return method, re.sub(r"\{[^}]+\}", "acme", path), {name: number} if where == "query" else {}


def test_the_api_has_integer_parameters_and_each_is_bounded_by_the_database(client: TestClient) -> None:
    found = _integer_parameters(client)
    assert {name for _, _, _, name, _ in found} >= {"limit", "approval_id"}
    for _, path, _, name, schema in found:
        assert 0 <= schema["minimum"] <= schema["maximum"] <= MAX_DB_INTEGER, (path, name, schema)


@pytest.mark.parametrize("number", LENIENT_NUMBERS + OVERSIZED_NUMBERS)
def test_every_integer_parameter_takes_only_plain_digits_the_database_holds(
    client: TestClient, auth: dict[str, str], fleet: None, resources: ServerResources, number: str
) -> None:
    before = _state(resources)
    for method, path, where, name, _ in _integer_parameters(client):
        if where == "path" and not number.strip():
            continue  # an empty or blank path segment is another route, or none
        method, url, params = _asking(method, path, where, name, number)
        _refused(client.request(method, url, params=params, headers=auth), 422, f"{where}.{name}")
    assert _state(resources) == before


def test_plain_digits_within_the_bounds_are_taken(client: TestClient, auth: dict[str, str], fleet: None) -> None:
    assert len(client.get("/api/v1/devices", params={"limit": "2"}, headers=auth).json()["devices"]) == 2
    assert client.get("/api/v1/dep/tokens/acme/syncs", params={"limit": "50"}, headers=auth).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "key"),
    [
        ("POST", "/api/v1/profiles", '{"name": "Other", "name": "Sneaky"}', "body.name"),
        ("POST", "/api/v1/profiles", '{"name": "Other", "supervised": true, "supervised": false}', "body.supervised"),
        ("PATCH", "/api/v1/profiles/Staff", '{"department": "A", "department": "B"}', "body.department"),
        ("PATCH", "/api/v1/profiles/Staff", '{"x": {"y": [1, {"z": 1, "z": 2}]}}', "body.x.y.1.z"),
        ("POST", "/api/v1/profiles/Staff/assignments", '{"serials": ["C00"], "serials": ["C01"]}', "body.serials"),
        ("PUT", "/api/v1/profiles/defaults/acme", '{"profile": "Staff", "profile": null}', "body.profile"),
    ],
)
def test_json_with_a_key_twice_is_refused_naming_the_key(
    client: TestClient,
    auth: dict[str, str],
    staff: None,
    resources: ServerResources,
    method: str,
    path: str,
    body: str,
    key: str,
) -> None:
    before = _state(resources)
    answer = client.request(method, path, content=body, headers={**auth, "Content-Type": "application/json"})
    details = _refused(answer, 422, key)["details"]
    assert [detail["location"] for detail in details] == [key]
    assert "twice" in details[0]["message"]
    assert _state(resources) == before


def test_json_that_names_each_key_once_is_taken(client: TestClient, auth: dict[str, str], staff: None) -> None:
    body = '{"description": "ok", "department": "Sales"}'
    answer = client.patch("/api/v1/profiles/Staff", content=body, headers={**auth, "Content-Type": "application/json"})
    assert answer.status_code == 200 and answer.json()["department"] == "Sales"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"all_unassigned": True, "token": "acme"}, ("all_unassigned", "token")),
        ({"serials": ["C00"], "token": "acme"}, ("serials", "token")),
        ({"serials": ["C00"], "all_unassigned": True}, ("serials", "all_unassigned")),
        ({"serials": ["C00"], "all_unassigned": True, "token": "acme"}, ("serials", "all_unassigned", "token")),
        ({}, ("serials", "all_unassigned", "token")),
        ({"serials": [], "all_unassigned": False, "token": None}, ("serials", "all_unassigned", "token")),
    ],
)
def test_an_assignment_names_its_devices_exactly_one_way(
    client: TestClient, auth: dict[str, str], staff: None, resources: ServerResources, body: Any, named: Any
) -> None:
    before = _state(resources)
    answer = client.post("/api/v1/profiles/Staff/assignments", json=body, headers=auth)
    assert answer.status_code == 422, answer.text
    message = answer.json()["message"]
    assert all(field in message for field in named), message
    assert _state(resources) == before


def test_each_way_of_naming_devices_alone_is_taken(client: TestClient, auth: dict[str, str], staff: None) -> None:
    for body in ({"serials": ["C00"]}, {"all_unassigned": True}, {"token": "acme"}):
        answer = client.post("/api/v1/profiles/Staff/assignments", json=body, headers=auth)
        assert answer.status_code == 202, (body, answer.text)


@pytest.mark.parametrize(
    "params", [{"cannot_enroll": "true", "no_profile": "false"}, {"cannot_enroll": "false", "no_profile": "true"}]
)
def test_a_filter_and_its_former_name_that_disagree_are_refused(
    client: TestClient, auth: dict[str, str], fleet: None, params: dict[str, str]
) -> None:
    answer = client.get("/api/v1/devices", params=params, headers=auth)
    assert answer.status_code == 400, answer.text
    assert "cannot_enroll" in answer.json()["message"] and "no_profile" in answer.json()["message"]


def test_a_filter_and_its_former_name_that_agree_are_taken(
    client: TestClient, auth: dict[str, str], fleet: None
) -> None:
    answer = client.get("/api/v1/devices", params={"cannot_enroll": "true", "no_profile": "true"}, headers=auth)
    assert answer.status_code == 200 and len(answer.json()["devices"]) == 3
    assert len(client.get("/api/v1/devices", params={"no_profile": "true"}, headers=auth).json()["devices"]) == 3
