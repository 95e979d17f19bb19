"""The seed's steps through the console against the simulated Apple: add a token, sync, find devices.

Also the refusals: a read-only admin's posts, forms without their CSRF token, wrong files, hostile text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pippin.config import Settings
from pippin.dep import token as token_service
from pippin.dep.sync import start_sync
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import AuditEvent, DEPToken, SyncRun
from tests.actors import TEST_ACTOR
from tests.console.conftest import csrf_of
from tests.e2e.apple import ADMIN, add_devices
from tests.simulator import RunningSimulator


@pytest.fixture
def settings(tmp_path: Path, database_url: str, sim: RunningSimulator) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
        dep_base_url=sim.base_url,
        dep_max_retries=1,
    )


def _post(client: TestClient, page: str, action: str, **data: object) -> object:
    return client.post(action, data={**data, "csrf_token": csrf_of(client.get(page).text)})


def _add_token(ann: TestClient, sim: RunningSimulator, name: str = "acme") -> str:
    """Steps 2-4 of the seed by clicking: key, Apple's portal, upload. Returns the MDM server's UUID."""
    made = _post(ann, "/console/tokens/new", "/console/tokens/new", name=name)
    assert made.status_code == 303 and made.headers["location"] == f"/console/tokens/{name}/connect"  # type: ignore[attr-defined]
    steps = ann.get(f"/console/tokens/{name}/connect")
    assert "Apple Business Manager" in steps.text and "Download Token" in steps.text
    pem = ann.get(f"/console/tokens/{name}/public-key.pem")
    assert pem.status_code == 200 and pem.text.startswith("-----BEGIN CERTIFICATE-----")
    assert f"pippin-dep-{name}.pem" in pem.headers["content-disposition"]
    server = sim.portal.post(
        "/portal/mdm-servers", json={"name": f"{name} MDM", "public_key_pem": pem.text, "admin_apple_id": ADMIN}
    ).json()
    p7m = sim.portal.get(f"/portal/mdm-servers/{server['server_uuid']}/token").content
    uploaded = ann.post(
        f"/console/tokens/{name}/upload",
        data={"apple_id": ADMIN, "csrf_token": csrf_of(steps.text)},
        files={"token": ("acme_smime.p7m", p7m, "application/pkcs7-mime")},
    )
    assert uploaded.status_code == 303, uploaded.text
    server_uuid: str = server["server_uuid"]
    return server_uuid


def test_an_admin_adds_a_token_syncs_and_finds_a_device(
    ann: TestClient, sim: RunningSimulator, resources: ServerResources
) -> None:
    server_uuid = _add_token(ann, sim)
    serials = add_devices(sim, server_uuid, 8)
    detail = ann.get("/console/tokens/acme")
    assert detail.status_code == 200 and "acme MDM" in detail.text and "days left" in detail.text
    assert "is connected to" in detail.text  # the notice of the upload
    synced = _post(ann, "/console/tokens/acme", "/console/tokens/acme/sync")
    assert synced.status_code == 303  # type: ignore[attr-defined]
    detail = ann.get("/console/tokens/acme")
    assert "succeeded" in detail.text and "has started" in detail.text
    listed = ann.get("/console/devices")
    assert listed.text.count(">Not contacted</td>") == 8
    found = ann.get("/console/devices", params={"q": serials[2].lower()})
    assert serials[2] in found.text and serials[3] not in found.text
    device = ann.get(f"/console/devices/{serials[2]}")
    assert device.status_code == 200 and "wifi_mac_address" in device.text and serials[2] in device.text
    overview = ann.get("/console/")
    assert "acme" in overview.text and "Not contacted" in overview.text
    # Apple holds no profile for them yet: the overview counts them and links to the filtered list.
    assert "8 device(s) cannot enroll" in overview.text and "/console/devices?cannot_enroll=1" in overview.text
    blocked = ann.get("/console/devices", params={"cannot_enroll": "1"})
    assert blocked.text.count("cannot enroll</span>") == 8
    backwards = ann.get("/console/devices", params={"sort": "serial", "direction": "desc"}).text
    positions = [backwards.index(f">{serial}</a>") for serial in sorted(serials, reverse=True)]
    assert positions == sorted(positions)
    with transaction(resources.session_factory) as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor != TEST_ACTOR.name).order_by(AuditEvent.id)
        ).all()
    assert actions == ["admin.sign_in", "dep.keypair.create", "dep.token.upload", "dep.sync.start"]


def test_sync_now_is_disabled_while_the_window_is_open(ann: TestClient, sim: RunningSimulator) -> None:
    _add_token(ann, sim)
    page = ann.get("/console/tokens/acme").text
    # Another process holds the window: the claim of a second sync must be refused with the reopening time.
    with transaction(ann.app.state.resources.session_factory) as session:  # type: ignore[attr-defined]
        start_sync(session, token_name="acme", settings=ann.app.state.resources.settings)  # type: ignore[attr-defined]
    shown = ann.get("/console/tokens/acme")
    assert 'id="sync-now" disabled' in shown.text and "Sync is possible again at" in shown.text
    refused = ann.post("/console/tokens/acme/sync", data={"csrf_token": csrf_of(page)})
    assert refused.status_code == 409 and "Sync" in refused.text and "Traceback" not in refused.text


def test_a_read_only_admin_sees_everything_and_changes_nothing(rita: TestClient, resources: ServerResources) -> None:
    page = rita.get("/console/tokens")
    assert page.status_code == 200 and "Add a DEP token" not in page.text
    refused = _post(rita, "/console/audit", "/console/tokens/new", name="sneaky")
    assert refused.status_code == 403 and "read-only" in refused.text  # type: ignore[attr-defined]
    with transaction(resources.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(DEPToken)) == 0


def test_forms_without_the_csrf_token_change_nothing(ann: TestClient, resources: ServerResources) -> None:
    for data in ({}, {"csrf_token": "0" * 64}, {"csrf_token": "x" * 5000}):
        refused = ann.post("/console/tokens/new", data={"name": "forged", **data})
        assert refused.status_code in (403, 400) and "nothing was changed" in refused.text.lower()
    with transaction(resources.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(DEPToken)) == 0


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("token.pem", b"-----BEGIN CERTIFICATE-----", "end in .p7m"),
        ("token.p7m", b"x" * (token_service.MAX_TOKEN_FILE_BYTES + 1), "larger than"),
        ("token.p7m", b"<script>alert(1)</script>", "alert"),
    ],
)
def test_wrong_token_files_are_refused_in_place(
    ann: TestClient, resources: ServerResources, filename: str, content: bytes, expected: str
) -> None:
    steps = _post(ann, "/console/tokens/new", "/console/tokens/new", name="acme")
    assert steps.status_code == 303  # type: ignore[attr-defined]
    page = ann.get("/console/tokens/acme/connect")
    answer = ann.post(
        "/console/tokens/acme/upload",
        data={"apple_id": ADMIN, "csrf_token": csrf_of(page.text)},
        files={"token": (filename, content, "application/octet-stream")},
    )
    assert answer.status_code == 400 and 'role="alert"' in answer.text
    assert "<script>alert" not in answer.text
    with transaction(resources.session_factory) as session:
        token = session.scalars(select(DEPToken)).one()
        assert token.credentials_encrypted is None
        assert session.scalar(select(func.count()).select_from(SyncRun)) == 0
    if expected != "alert":
        assert expected in answer.text


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "a" * 65, "../etc", ""])
def test_hostile_token_names_are_refused_and_escaped(ann: TestClient, resources: ServerResources, name: str) -> None:
    answer = _post(ann, "/console/tokens/new", "/console/tokens/new", name=name)
    assert answer.status_code == 400  # type: ignore[attr-defined]
    assert "<script>alert(1)</script>" not in answer.text  # type: ignore[attr-defined]
    with transaction(resources.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(DEPToken)) == 0


@pytest.mark.parametrize(
    "params",
    [
        {"q": "x" * 500},
        {"state": "<script>"},
        {"sort": "password"},
        {"after": "not-a-cursor"},
        {"assignment": "weird"},
        {"direction": "sideways"},
        {"cannot_enroll": "x" * 50},
        {"sort": "model", "after": "WyJzZXJpYWwiLCAiYXNjIiwgIiIsICJDIl0"},  # a cursor made for the serial order
    ],
)
def test_hostile_device_filters_get_a_clear_message(ann: TestClient, params: dict[str, str]) -> None:
    answer = ann.get("/console/devices", params=params)
    assert answer.status_code == 400 and "<script>" not in answer.text
    assert "Traceback" not in answer.text


def test_an_unknown_device_or_token_is_a_page_saying_so(ann: TestClient) -> None:
    assert "No corporate-owned device" in ann.get("/console/devices/NOPE123").text
    missing = ann.get("/console/tokens/nope")
    assert missing.status_code == 404 and "nope" in missing.text
