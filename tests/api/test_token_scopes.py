"""API token scopes: a read-only token reads everything and changes nothing, on every route that may write.

The walk below takes the routes from the API's own description, so a writing route added later without a request here
fails :func:`test_every_writing_route_is_walked`, and one that forgot the scope check cannot exist: the check is
made once, for every /api/v1 route, by the authentication dependency.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi.testclient import TestClient
from starlette.applications import Starlette

from pippin.admin import users as user_service
from pippin.admin.api_tokens import create_api_token
from pippin.crypto.keys import generate_private_key
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from tests.actors import TEST_ACTOR
from tests.api.rows import every_row
from tests.push.apple_ca import issue_vendor_certificate, pem
from tests.servers import mounted_app, quick_password_hashes
from tests.token_with_history import seed_tokens

PASSWORD = "correct horse battery staple"

_VENDOR_KEY = generate_private_key()
VENDOR_FILES = {
    "certificate": ("mdm.pem", pem(issue_vendor_certificate(_VENDOR_KEY))),
    "key": ("mdm.key", _VENDOR_KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())),
}

#: One well-formed request per writing route: (method, route path) -> (concrete path, request keywords).
WRITES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("POST", "/api/v1/dep/tokens/{name}/keypair"): ("/api/v1/dep/tokens/acme/keypair", {}),
    ("PUT", "/api/v1/dep/tokens/{name}"): (
        "/api/v1/dep/tokens/acme",
        {"files": {"token": ("acme_smime.p7m", b"not a token")}, "data": {"apple_id": "it@example.com"}},
    ),
    ("POST", "/api/v1/dep/tokens/{name}/sync"): ("/api/v1/dep/tokens/acme/sync", {}),
    ("POST", "/api/v1/profiles"): ("/api/v1/profiles", {"json": {"name": "Kiosk"}}),
    ("PATCH", "/api/v1/profiles/{name}"): ("/api/v1/profiles/Staff", {"json": {"department": "Sales"}}),
    ("POST", "/api/v1/profiles/{name}/assignments"): (
        "/api/v1/profiles/Staff/assignments",
        {"json": {"serials": ["A4"]}},
    ),
    ("PUT", "/api/v1/profiles/defaults/{token}"): ("/api/v1/profiles/defaults/other", {"json": {"profile": "Staff"}}),
    ("POST", "/api/v1/profiles/retry-due"): ("/api/v1/profiles/retry-due", {}),
    ("POST", "/api/v1/profiles/{name}/setup-commands"): (
        "/api/v1/profiles/Staff/setup-commands",
        {"json": {"kind": "device_name", "template": "iPad-{serial}"}},
    ),
    ("POST", "/api/v1/admins/{email}/disable"): ("/api/v1/admins/bo@example.com/disable", {}),
    ("POST", "/api/v1/admins/{email}/enable"): ("/api/v1/admins/bo@example.com/enable", {}),
    ("POST", "/api/v1/admins/{email}/unlock"): ("/api/v1/admins/bo@example.com/unlock", {}),
    ("PUT", "/api/v1/admins/{email}/role"): ("/api/v1/admins/bo@example.com/role", {"json": {"role": "read-only"}}),
    ("POST", "/api/v1/admins/{email}/password"): ("/api/v1/admins/bo@example.com/password", {}),
    ("PUT", "/api/v1/push/vendor"): ("/api/v1/push/vendor", {"files": VENDOR_FILES}),
    ("POST", "/api/v1/push/certificate/request"): ("/api/v1/push/certificate/request", {}),
    ("PUT", "/api/v1/push/certificate"): (
        "/api/v1/push/certificate",
        {"files": {"certificate": ("push.pem", VENDOR_FILES["certificate"][1])}, "data": {"apple_id": "it@ex.com"}},
    ),
    ("POST", "/api/v1/devices/{serial}/commands"): (
        "/api/v1/devices/A4/commands",
        {"json": {"request_type": "DeviceInformation"}},
    ),
    ("POST", "/api/v1/devices/{serial}/commands/{command_uuid}/cancel"): ("/api/v1/devices/A4/commands/X/cancel", {}),
    ("POST", "/api/v1/commands"): (
        "/api/v1/commands",
        {"json": {"request_type": "DeviceInformation", "token": "acme"}},
    ),
    ("POST", "/api/v1/command-approvals/{approval_id}/approve"): ("/api/v1/command-approvals/1/approve", {}),
    # Deletions last: the read-write walk runs in this order, and the others need what they delete.
    ("DELETE", "/api/v1/profiles/{name}/setup-commands/{command_id}"): ("/api/v1/profiles/Staff/setup-commands/1", {}),
    ("DELETE", "/api/v1/profiles/{name}"): ("/api/v1/profiles/Kiosk", {}),
    ("DELETE", "/api/v1/dep/tokens/{name}"): ("/api/v1/dep/tokens/acme", {}),
}


#: Routes whose change needs a real file from Apple (a DEP token; a push certificate issued for the request just
#: made): with what the walk sends they are refused, after the scope check.
NEEDS_APPLE = {
    ("PUT", "/api/v1/dep/tokens/{name}"),
    ("POST", "/api/v1/dep/tokens/{name}/sync"),
    ("PUT", "/api/v1/push/certificate"),
}
#: Routes whose change needs a queued command or a bulk erase another admin asked for (tests/api/test_commands.py
#: makes them): here they are refused after the scope check.
NEEDS_DEVICES = {
    ("POST", "/api/v1/devices/{serial}/commands/{command_uuid}/cancel"),
    ("POST", "/api/v1/command-approvals/{approval_id}/approve"),
}


@pytest.fixture(autouse=True)
def _quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_password_hashes(monkeypatch)


@pytest.fixture
def world(resources: ServerResources) -> None:
    with transaction(resources.session_factory) as session:
        seed_tokens(session)
        for email in ("ann@example.com", "bo@example.com"):
            user_service.create_user(session, email=email, password=PASSWORD, actor=TEST_ACTOR)


def _bearer(resources: ServerResources, *, name: str, scope: str) -> dict[str, str]:
    with transaction(resources.session_factory) as session:
        _, plaintext = create_api_token(session, name=name, scope=scope, actor=TEST_ACTOR)
    return {"Authorization": f"Bearer {plaintext}"}


def _writing_routes(app: Starlette) -> set[tuple[str, str]]:
    """Every (method, path) under /api/v1 but GET and HEAD, from the API's own OpenAPI description."""
    paths = mounted_app(app, "").openapi()["paths"]
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/api/v1")
        for method in operations
        if method.upper() not in ("GET", "HEAD") and method != "parameters"
    }


def test_every_writing_route_is_walked(app: Starlette) -> None:
    assert _writing_routes(app) == set(WRITES)


def test_a_read_only_token_gets_403_on_every_writing_route_and_nothing_changes(
    client: TestClient, resources: ServerResources, world: None
) -> None:
    headers = _bearer(resources, name="dashboard", scope="read-only")
    before = every_row(resources)
    for (method, route), (path, keywords) in WRITES.items():
        answer = client.request(method, path, headers=headers, **keywords)
        assert answer.status_code == 403, (method, route, answer.text)
        body = answer.json()
        assert body["error"] == "read_only_token" and "read-write" in body["hint"], (method, route)
    assert every_row(resources) == before


def test_a_read_only_token_reads(client: TestClient, resources: ServerResources, world: None) -> None:
    headers = _bearer(resources, name="dashboard", scope="read-only")
    reads = ("/api/v1/dep/tokens", "/api/v1/dep/tokens/acme/deletion", "/api/v1/devices", "/api/v1/admins")
    for path in (*reads, "/api/v1/push/certificate"):
        assert client.get(path, headers=headers).status_code == 200, path
    assert client.head("/api/v1/dep/tokens", headers=headers).status_code != 403


def test_the_same_requests_change_things_with_a_read_write_token(
    client: TestClient, resources: ServerResources, world: None
) -> None:
    """What the read-only walk shows unchanged would have changed: each request does its change when allowed."""
    headers = _bearer(resources, name="deploy", scope="read-write")
    for (method, route), (path, keywords) in WRITES.items():
        answer = client.request(method, path, headers=headers, **keywords)
        if (method, route) in NEEDS_APPLE:
            assert answer.status_code in (400, 409), (method, route, answer.text)
        elif (method, route) in NEEDS_DEVICES:
            assert answer.status_code in (404, 409), (method, route, answer.text)
        else:
            assert 200 <= answer.status_code < 300, (method, route, answer.text)
