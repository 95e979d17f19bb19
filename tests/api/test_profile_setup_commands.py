"""The enrollment-time command routes of a profile, and the setup problem on the device routes: translation only
(statuses, shapes, hostile input refused with nothing changed); the services are tested apart."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import (
    AuditEvent,
    DEPProfile,
    SetupCommand,
)
from tests.mdm.command_samples import profile, signed
from tests.mdm.enrollment_setup import stuck_in_setup_assistant

BASE = "/api/v1/profiles/Staff/setup-commands"


@pytest.fixture
def staff(resources: ServerResources) -> None:
    with transaction(resources.session_factory) as session:
        session.add(DEPProfile(name="Staff", is_supervised=True, await_device_configured=True))


def stored(resources: ServerResources) -> tuple[int, int]:
    with transaction(resources.session_factory) as session:
        return (
            session.scalar(select(func.count()).select_from(SetupCommand)) or 0,
            session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        )


def test_the_routes_need_an_admin_token(client: TestClient, staff: None) -> None:
    assert client.get(BASE).status_code == 401
    assert client.post(BASE, json={"kind": "device_name", "template": "{serial}"}).status_code == 401


def test_add_list_and_remove(client: TestClient, auth: dict[str, str], staff: None, resources: ServerResources) -> None:
    _, events = stored(resources)
    payload = base64.b64encode(profile()).decode()
    added = client.post(BASE, json={"kind": "install_profile", "payload": payload}, headers=auth)
    assert added.status_code == 201, added.text
    assert added.json()["label"] == "Wi-Fi" and "payload" not in added.json()
    signed_body = base64.b64encode(signed(profile())).decode()
    assert client.post(BASE, json={"kind": "install_profile", "payload": signed_body}, headers=auth).status_code == 201
    named = client.post(BASE, json={"kind": "device_name", "template": "{model} {serial}"}, headers=auth)
    assert named.status_code == 201 and named.json()["position"] == 3
    listed = client.get(BASE, headers=auth).json()
    assert [item["request_type"] for item in listed] == ["InstallProfile", "InstallProfile", "Settings"]
    assert "correct horse" not in str(listed)
    assert client.delete(f"{BASE}/{listed[0]['id']}", headers=auth).status_code == 204
    assert [item["position"] for item in client.get(BASE, headers=auth).json()] == [1, 2]
    assert client.delete(f"{BASE}/{listed[0]['id']}", headers=auth).status_code == 404
    assert stored(resources) == (2, events + 4)  # three added, one removed: four audit events


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"kind": "device_name", "template": "{hostname}"}, "{hostname}, which is not a placeholder"),
        ({"kind": "device_name", "template": "{udid.__init__.__globals__}"}, "not a placeholder"),
        ({"kind": "device_name", "template": "a{"}, "unmatched"),
        ({"kind": "device_name", "template": "a\u202eb"}, "template"),
        ({"kind": "device_name"}, "needs a template"),
        ({"kind": "device_name", "template": "{serial}", "payload": "eA=="}, "not a payload"),
        ({"kind": "install_profile"}, "needs the .mobileconfig"),
        ({"kind": "install_profile", "payload": "not base64!"}, "not base64"),
        ({"kind": "install_profile", "payload": base64.b64encode(b"<plist><string/></plist>").decode()}, "profile"),
        ({"kind": "install_profile", "payload": base64.b64encode(b"<" * (1024 * 1024 + 1)).decode()}, "larger"),
        ({"kind": "install_profile", "payload": "eA==", "template": "{serial}"}, "not a template"),
        ({"kind": "erase_everything", "template": "{serial}"}, "kind"),
        ({"kind": "device_name", "template": "{serial}", "extra": 1}, "extra"),
    ],
)
def test_hostile_bodies_are_refused_with_400_and_change_nothing(
    client: TestClient, auth: dict[str, str], staff: None, resources: ServerResources, body: dict[str, str], said: str
) -> None:
    before = stored(resources)
    refused = client.post(BASE, json=body, headers=auth)
    assert refused.status_code in (400, 413, 422), refused.text  # 413: past the API's body limit
    assert said.lower() in refused.text.lower()
    assert stored(resources) == before


def test_unknown_profiles_and_ids(client: TestClient, auth: dict[str, str], staff: None) -> None:
    assert client.get("/api/v1/profiles/Nobody/setup-commands", headers=auth).status_code == 404
    body = {"kind": "device_name", "template": "{serial}"}
    assert client.post("/api/v1/profiles/Nobody/setup-commands", json=body, headers=auth).status_code == 404
    assert client.delete(f"{BASE}/999", headers=auth).status_code == 404
    assert client.delete(f"{BASE}/0", headers=auth).status_code in (400, 422)
    assert client.delete(f"{BASE}/1.5", headers=auth).status_code in (400, 422)


def test_the_device_routes_show_a_stuck_device_after_the_setting(
    client: TestClient, auth: dict[str, str], resources: ServerResources
) -> None:
    now = resources.clock()
    started = now - resources.settings.setup_stuck_after - timedelta(minutes=1)
    with transaction(resources.session_factory) as session:
        stuck_in_setup_assistant(session, started=started, steps=[])
    shown = client.get("/api/v1/devices/F5JM992LF193", headers=auth).json()
    assert shown["awaiting_configuration"] is True
    assert shown["setup_problem"]["kind"] == "stuck" and "DeviceConfigured" in shown["setup_problem"]["reason"]
    (listed,) = client.get("/api/v1/devices", headers=auth).json()["devices"]
    assert listed["setup_problem"] == shown["setup_problem"]
