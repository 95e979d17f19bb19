"""/api/v1/dep/tokens: the token flow against the simulated Apple, and hostile input to every route."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from pippin.config import Settings
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import DEPToken
from tests.servers import build_server
from tests.simulator import RunningSimulator

APPLE_ID = "admin@example.com"


@pytest.fixture
def sim_client(settings: Settings, sim: RunningSimulator, auth: dict[str, str]) -> Iterator[TestClient]:
    """An authenticated client of an app whose Apple is the simulator (the `auth` token is on its database)."""
    app = build_server(settings.model_copy(update={"dep_base_url": sim.base_url}))
    with TestClient(app, raise_server_exceptions=False, headers=auth) as client:
        yield client


def _register_at_apple(sim: RunningSimulator, pem: str, name: str = "Berlin MDM") -> bytes:
    created = sim.portal.post(
        "/portal/mdm-servers", json={"name": name, "public_key_pem": pem, "admin_apple_id": APPLE_ID}
    )
    assert created.status_code == 201, created.text
    download = sim.portal.get(f"/portal/mdm-servers/{created.json()['server_uuid']}/token")
    assert download.status_code == 200
    return download.content


def _upload(
    client: TestClient, name: str, p7m: bytes, apple_id: str = APPLE_ID, headers: dict[str, str] | None = None
) -> Response:
    return client.put(
        f"/api/v1/dep/tokens/{name}",
        headers=headers,
        files={"token": ("Berlin_MDM_Token_smime.p7m", p7m, "application/pkcs7-mime")},
        data={"apple_id": apple_id},
    )


def test_the_token_flow_end_to_end_never_shows_a_secret(
    sim_client: TestClient, sim: RunningSimulator, resources: ServerResources, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything Pippin logs at any level, and other libraries at the INFO a server runs with. (oauthlib's own
    # DEBUG output prints OAuth parameters; Pippin never turns it on.)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="pippin")
    responses = []
    keypair = sim_client.post("/api/v1/dep/tokens/berlin/keypair")
    responses.append(keypair)
    assert keypair.status_code == 200
    assert keypair.headers["content-type"].startswith("application/x-pem-file")
    assert keypair.headers["content-disposition"] == 'attachment; filename="pippin-dep-berlin.pem"'
    assert keypair.text.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE KEY" not in keypair.text

    awaiting = sim_client.get("/api/v1/dep/tokens/berlin")
    responses.append(awaiting)
    assert awaiting.json()["status"] == "awaiting_token"

    uploaded = _upload(sim_client, "berlin", _register_at_apple(sim, keypair.text))
    responses.append(uploaded)
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["token"]["server_name"] == "Berlin MDM"

    shown = sim_client.get("/api/v1/dep/tokens/berlin")
    listed = sim_client.get("/api/v1/dep/tokens")
    account = sim_client.get("/api/v1/dep/tokens/berlin/account")
    responses += [shown, listed, account]
    token = shown.json()
    assert token["server_name"] == "Berlin MDM" and token["status"] == "ok" and token["apple_id"] == APPLE_ID
    assert token["expiry_level"] == "ok" and token["days_left"] > 300
    assert [item["name"] for item in listed.json()] == ["berlin"]
    assert account.status_code == 200 and account.json()["server_uuid"] == token["server_uuid"]

    with transaction(resources.session_factory) as session:
        stored = session.scalars(select(DEPToken)).one()
        assert stored.credentials_encrypted is not None
        credentials = json.loads(resources.secret_box.decrypt(stored.credentials_encrypted))
    secrets = [str(credentials[key]) for key in ("consumer_key", "consumer_secret", "access_token", "access_secret")]
    assert all(len(secret) >= 8 for secret in secrets)
    for response in responses:
        for secret in secrets:
            assert secret not in response.text
    for secret in secrets:
        assert secret not in caplog.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/dep/tokens/" + "x" * 10_000 + "/keypair", 400),
        ("/api/v1/dep/tokens/..%2F..%2Fetc/keypair", 404),
        ("/api/v1/dep/tokens/a%20b/keypair", 400),
        ("/api/v1/dep/tokens/%00/keypair", 400),
        ("/api/v1/dep/tokens/na%C3%AFve/keypair", 400),
    ],
)
def test_keypair_refuses_bad_names(client: TestClient, auth: dict[str, str], path: str, status: int) -> None:
    response = client.post(path, headers=auth)
    assert response.status_code == status
    assert response.json()["error"] in ("invalid_input", "not_found")
    assert client.get("/api/v1/dep/tokens", headers=auth).json() == []


def test_reading_an_unknown_or_badly_named_token(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get("/api/v1/dep/tokens/ghost", headers=auth).status_code == 404
    long_name = client.get("/api/v1/dep/tokens/" + "y" * 10_000, headers=auth)
    assert long_name.status_code == 400 and len(long_name.text) < 1000
    assert client.get("/api/v1/dep/tokens/ghost/account", headers=auth).status_code == 404


@pytest.mark.parametrize(("method", "route"), [("POST", "/sync"), ("GET", "/syncs")])
def test_a_badly_named_token_is_a_documented_400_on_the_sync_routes(
    client: TestClient, auth: dict[str, str], method: str, route: str
) -> None:
    answer = client.request(method, "/api/v1/dep/tokens/a%0Ab" + route, headers=auth)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_input"
    described = client.get("/api/openapi.json").json()["paths"]["/api/v1/dep/tokens/{name}" + route]
    assert "400" in described[method.lower()]["responses"]


@pytest.fixture
def awaiting(client: TestClient, auth: dict[str, str]) -> str:
    assert client.post("/api/v1/dep/tokens/acme/keypair", headers=auth).status_code == 200
    return "acme"


def _status(client: TestClient, auth: dict[str, str]) -> str:
    status: str = client.get("/api/v1/dep/tokens/acme", headers=auth).json()["status"]
    return status


def test_upload_refuses_the_wrong_content_type(client: TestClient, auth: dict[str, str], awaiting: str) -> None:
    as_json = client.put("/api/v1/dep/tokens/acme", headers=auth, json={"token": "x", "apple_id": APPLE_ID})
    assert as_json.status_code == 422 and as_json.json()["error"] == "invalid_request"
    as_text = client.put(
        "/api/v1/dep/tokens/acme", headers={**auth, "Content-Type": "text/plain"}, content=b"\x00\x01garbage"
    )
    assert as_text.status_code == 422
    broken = client.put(
        "/api/v1/dep/tokens/acme",
        headers={**auth, "Content-Type": "multipart/form-data; boundary=zzz"},
        content=b'--zzz\r\nContent-Disposition: form-data; name="token"\r\n\r\n\xff\xfe',
    )
    assert broken.status_code == 422
    assert _status(client, auth) == "awaiting_token"


def test_upload_refuses_missing_fields(client: TestClient, auth: dict[str, str], awaiting: str) -> None:
    no_file = client.put("/api/v1/dep/tokens/acme", headers=auth, data={"apple_id": APPLE_ID})
    assert no_file.status_code == 422 and "body.token" in {d["location"] for d in no_file.json()["details"]}
    no_apple_id = client.put("/api/v1/dep/tokens/acme", headers=auth, files={"token": ("t.p7m", b"abc")})
    assert no_apple_id.status_code == 422
    assert _status(client, auth) == "awaiting_token"


def test_upload_refuses_an_oversized_file_without_storing_anything(
    client: TestClient, auth: dict[str, str], awaiting: str
) -> None:
    within_body_limit = client.put(
        "/api/v1/dep/tokens/acme",
        headers=auth,
        files={"token": ("t.p7m", b"A" * 1_000_001)},
        data={"apple_id": APPLE_ID},
    )
    assert within_body_limit.status_code == 413 and within_body_limit.json()["error"] == "too_large"
    over_body_limit = client.put(
        "/api/v1/dep/tokens/acme",
        headers=auth,
        files={"token": ("t.p7m", b"A" * 3_000_000)},
        data={"apple_id": APPLE_ID},
    )
    assert over_body_limit.status_code == 413
    assert _status(client, auth) == "awaiting_token"


@pytest.mark.parametrize(
    "p7m",
    [b"", b"\x00\xff" * 500, b"MIME-Version: 1.0\r\n\r\nnot base64 at all", b"-----BEGIN PKCS7-----\nAAAA\n"],
)
def test_upload_refuses_garbage_files(client: TestClient, auth: dict[str, str], awaiting: str, p7m: bytes) -> None:
    response = _upload(client, "acme", p7m, headers=auth)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_input"
    assert _status(client, auth) == "awaiting_token"


@pytest.mark.parametrize("apple_id", ["", "not-an-email", "a@b@c", "x" * 321 + "@example.com"])
def test_upload_refuses_a_bad_apple_id(client: TestClient, auth: dict[str, str], awaiting: str, apple_id: str) -> None:
    response = _upload(client, "acme", b"\x00" * 100, apple_id=apple_id, headers=auth)
    assert response.status_code in (400, 422)
    assert _status(client, auth) == "awaiting_token"


def test_upload_for_an_unknown_or_bad_name(client: TestClient, auth: dict[str, str]) -> None:
    assert _upload(client, "ghost", b"\x00" * 100, headers=auth).status_code == 404
    assert _upload(client, "../etc", b"\x00" * 100, headers=auth).status_code == 404
    assert _upload(client, "z" * 10_000, b"\x00" * 100, headers=auth).status_code == 400


def test_account_of_a_token_never_uploaded_is_refused_clearly(
    client: TestClient, auth: dict[str, str], awaiting: str
) -> None:
    response = client.get("/api/v1/dep/tokens/acme/account", headers=auth)
    assert 400 <= response.status_code < 500 and response.json()["hint"]
