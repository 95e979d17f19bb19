"""Text the API refuses: control, format and separator characters in every path segment, query parameter, form
field and JSON string (400 or 422 naming the field, nothing changed); names at and past their limits; and
names in any script working end to end. On SQLite and PostgreSQL (PostgreSQL refuses NUL in text outright).
"""

# Names in other scripts and with en dashes are what these tests are about.
# ruff: noqa: RUF001

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.applications import Starlette

from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import AuditEvent, DEPProfile, DEPToken, Device
from pippin.text import MAX_DEP_TOKEN_NAME
from tests.servers import mounted_app

#: Characters the rule refuses, percent-encoded as a client would send them in a URL.
HOSTILE = {
    "nul": "%00",
    "escape": "%1B",
    "carriage return": "%0D",
    "bidi override": "%E2%80%AE",
    "zero width space": "%E2%80%8B",
    "line separator": "%E2%80%A8",
}
# A line feed in a path matches no route at all (the server's mounts match one line): a 404 before any input.
#: The same, as JSON or a form carries them.
HOSTILE_TEXT = {"nul": "\x00", "escape": "\x1b", "bidi override": "\u202e", "zero width space": "\u200b"}

#: A valid body for each route that takes one, so that only the hostile path or query parameter is wrong.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/v1/profiles/{name}"): {"json": {"description": "changed"}},
    ("POST", "/api/v1/profiles/{name}/assignments"): {"json": {"all_unassigned": True}},
    ("PUT", "/api/v1/profiles/defaults/{token}"): {"json": {"profile": None}},
    ("PUT", "/api/v1/admins/{email}/role"): {"json": {"role": "admin"}},
    ("POST", "/api/v1/profiles/{name}/setup-commands"): {"json": {"kind": "device_name", "template": "{serial}"}},
    ("POST", "/api/v1/devices/{serial}/commands"): {"json": {"request_type": "DeviceInformation"}},
    ("PUT", "/api/v1/dep/tokens/{name}"): {
        "data": {"apple_id": "it@example.com"},
        "files": {"token": ("t_smime.p7m", b"not a token", "application/pkcs7-mime")},
    },
}


@pytest.fixture
def existing(resources: ServerResources) -> None:
    """A token with a device and a profile, so that a request that got past the check could change something."""
    with transaction(resources.session_factory) as session:
        token = DEPToken(name="acme", status="ok")
        session.add(token)
        session.flush()
        session.add(Device(serial_number="C01", token_id=token.id, profile_status="empty", apple_record={}))
        session.add(DEPProfile(name="Staff", revision=1))


def _state(resources: ServerResources) -> tuple[int, ...]:
    with transaction(resources.session_factory) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (AuditEvent, DEPToken, DEPProfile, Device)
        )


def _route_cases(app: Starlette) -> list[tuple[str, str, list[str]]]:
    """Every /api/v1 operation with text path parameters, from the API's own OpenAPI description (whole numbers
    are walked by ``test_hostile_requests``)."""
    api: FastAPI = mounted_app(app, "")
    cases = []
    for path, operations in api.openapi()["paths"].items():
        for method, operation in operations.items():
            params = [
                param["name"]
                for param in operation.get("parameters", [])
                if param["in"] == "path" and param["schema"].get("type") == "string"
            ]
            if path.startswith("/api/v1") and params:
                cases.append((method.upper(), path, params))
    return cases


def test_every_route_with_a_path_parameter_is_walked(app: Starlette) -> None:
    """The walk below covers every route; a new route with a body needs an entry in BODIES to be walked."""
    cases = _route_cases(app)
    assert len(cases) >= 12
    for method, path, _ in cases:
        if method in ("PATCH", "PUT") or path.endswith("/assignments") or (method, path[-9:]) == ("POST", "/commands"):
            assert (method, path) in BODIES, f"add a valid body for {method} {path} to BODIES"


@pytest.mark.parametrize("char", sorted(HOSTILE))
def test_a_hostile_path_segment_is_refused_on_every_route_naming_what_it_names(
    app: Starlette,
    client: TestClient,
    auth: dict[str, str],
    existing: None,
    resources: ServerResources,
    char: str,
) -> None:
    before = _state(resources)
    for method, path, params in _route_cases(app):
        for param in params:
            url = path.replace("{" + param + "}", f"Sta{HOSTILE[char]}ff")
            for other in params:
                url = url.replace("{" + other + "}", "acme")
            url = re.sub(r"\{[a-z_]+\}", "1", url)  # whole-number parameters (test_hostile_requests walks them)
            answer = client.request(method, url, headers=auth, **BODIES.get((method, path), {}))
            assert answer.status_code in (400, 422), (method, url, answer.status_code, answer.text[:300])
            body = answer.json()
            assert body["error"] in ("invalid_input", "invalid_request"), (method, url, body)
            assert "control, format or separator" in body["message"], (method, url, body)
            named = (" name ", "serial number", "e-mail address", "command UUID")
            assert any(what in body["message"] for what in named), (method, url, body)
    assert _state(resources) == before


@pytest.mark.parametrize("param", ["search", "token", "profile", "cursor"])
@pytest.mark.parametrize("char", [*sorted(HOSTILE), "%0A"])
def test_hostile_device_filters_are_refused_naming_the_parameter(
    client: TestClient, auth: dict[str, str], existing: None, param: str, char: str
) -> None:
    answer = client.get(f"/api/v1/devices?{param}=a{HOSTILE.get(char, char)}b", headers=auth)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["details"][0]["location"] == f"query.{param}"
    assert "control, format or separator" in body["message"]


def test_a_lone_nul_search_is_refused_not_a_database_error(client: TestClient, auth: dict[str, str]) -> None:
    answer = client.get("/api/v1/devices?search=%00", headers=auth)
    assert answer.status_code == 422 and "query.search" in answer.json()["message"]


_PROFILE_TEXT_FIELDS = ("name", "description", "department", "support_phone", "support_email", "org_magic")


@pytest.mark.parametrize("field", [*_PROFILE_TEXT_FIELDS, "language", "region", "skip_setup_items", "anchor_certs"])
@pytest.mark.parametrize("char", sorted(HOSTILE_TEXT))
def test_hostile_text_in_any_profile_field_is_refused_naming_it_and_nothing_is_stored(
    client: TestClient, auth: dict[str, str], existing: None, resources: ServerResources, field: str, char: str
) -> None:
    before = _state(resources)
    text = f"Sa{HOSTILE_TEXT[char]}les"
    value: Any = [text] if field in ("skip_setup_items", "anchor_certs") else text
    created = client.post("/api/v1/profiles", json={"name": "Staff2", field: value}, headers=auth)
    edited = client.patch("/api/v1/profiles/Staff", json={field: value}, headers=auth)
    for answer in (created, edited):
        assert answer.status_code == 422, answer.text
        location = answer.json()["details"][0]["location"]
        assert location.startswith(f"body.{field}"), location
        assert "control, format or separator" in answer.json()["message"]
    assert _state(resources) == before


@pytest.mark.parametrize(
    "body",
    [
        {"serials": ["C01", "C0\x00"]},
        {"token": "ac\x00me"},
    ],
)
def test_hostile_text_in_an_assignment_is_refused_and_nothing_is_queued(
    client: TestClient, auth: dict[str, str], existing: None, resources: ServerResources, body: dict[str, Any]
) -> None:
    before = _state(resources)
    answer = client.post("/api/v1/profiles/Staff/assignments", json=body, headers=auth)
    assert answer.status_code == 422 and "control, format or separator" in answer.json()["message"], answer.text
    default = client.put("/api/v1/profiles/defaults/acme", json={"profile": "Sta\x00ff"}, headers=auth)
    assert default.status_code == 422 and default.json()["details"][0]["location"] == "body.profile"
    assert _state(resources) == before


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("a/b", "'/'"),
        ("what?", "'?'"),
        ("#1", "'#'"),
        ("back\\slash", "'\\'"),
        (".", "'.' or '..'"),
        ("..", "'.' or '..'"),
        ("-rf", "start with '-'"),
        ("ab\u202ecd", "U+202E"),
        ("a\u200bb", "U+200B"),
        ("a\u2028b", "U+2028"),
        ("Staff\n", "U+000A"),
    ],
)
def test_profile_names_that_would_not_work_in_a_url_or_a_command_line_are_refused_with_the_rule(
    client: TestClient, auth: dict[str, str], resources: ServerResources, name: str, rule: str
) -> None:
    before = _state(resources)
    answer = client.post("/api/v1/profiles", json={"name": name}, headers=auth)
    assert answer.status_code in (400, 422), answer.text
    assert rule in answer.json()["message"]
    assert _state(resources) == before


@pytest.mark.parametrize("name", ["Büro – iPads 東京", "Équipe – Paris", "iPads 📱 👩‍💻", "100% & more", "a" * 125])
def test_a_profile_named_in_any_script_works_in_every_route(
    client: TestClient, auth: dict[str, str], existing: None, name: str
) -> None:
    created = client.post("/api/v1/profiles", json={"name": name}, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == name
    path = f"/api/v1/profiles/{quote(name, safe='')}"
    assert client.get(path, headers=auth).json()["name"] == name
    assert client.patch(path, json={"department": "Sales"}, headers=auth).status_code == 200
    assigned = client.post(f"{path}/assignments", json={"serials": ["C01"]}, headers=auth)
    assert assigned.status_code == 202 and assigned.json()["profile"] == name, assigned.text
    listed = client.get("/api/v1/devices", params={"profile": name}, headers=auth).json()["devices"]
    assert [device["serial_number"] for device in listed] == ["C01"]
    assert client.put("/api/v1/profiles/defaults/acme", json={"profile": name}, headers=auth).status_code == 204


def test_dep_token_names_up_to_the_certificate_limit_make_a_key_pair(client: TestClient, auth: dict[str, str]) -> None:
    name = "n" * MAX_DEP_TOKEN_NAME
    answer = client.post(f"/api/v1/dep/tokens/{name}/keypair", headers=auth)
    assert answer.status_code == 200, answer.text
    certificate = x509.load_pem_x509_certificate(answer.content)
    common_name = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert common_name == f"pippin-dep-{name}"
    assert client.get(f"/api/v1/dep/tokens/{name}", headers=auth).json()["name"] == name


@pytest.mark.parametrize(
    "name", ["n" * (MAX_DEP_TOKEN_NAME + 1), "n" * 64, "-", "-x", "%2E", "%2E%2E", "_x", "B%C3%BCro"]
)
def test_dep_token_names_that_cannot_work_everywhere_are_refused_with_the_rule(
    client: TestClient, auth: dict[str, str], resources: ServerResources, name: str
) -> None:
    before = _state(resources)
    answer = client.post(f"/api/v1/dep/tokens/{name}/keypair", headers=auth)
    assert answer.status_code == 400, answer.text
    assert f"1-{MAX_DEP_TOKEN_NAME} letters" in answer.json()["message"]
    assert _state(resources) == before


@pytest.mark.parametrize(
    "apple_id", ["a\x00@x.com", "a\x00b@example.com", "<script>@x.com", "x@y", "it@example.com\u202e", ""]
)
def test_a_hostile_apple_id_is_refused_before_the_token_file_is_read(
    client: TestClient, auth: dict[str, str], existing: None, resources: ServerResources, apple_id: str
) -> None:
    before = _state(resources)
    answer = client.put(
        "/api/v1/dep/tokens/acme",
        data={"apple_id": apple_id},
        files={"token": ("t_smime.p7m", b"not a token", "application/pkcs7-mime")},
        headers=auth,
    )
    assert answer.status_code in (400, 422), answer.text
    message = answer.json()["message"]
    assert "apple_id" in message or "Apple ID" in message, message
    assert _state(resources) == before
