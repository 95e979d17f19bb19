"""A token's default profile and assigning devices to a profile, from the console, against the simulated Apple.

Each change is one audit event by the signed-in admin; refused forms (unknown serials, hostile text, a missing
CSRF token, a read-only admin) change nothing and record nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pippin.config import Settings
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import AuditEvent, Device, TokenDefaultProfile
from tests.console.conftest import csrf_of
from tests.e2e.apple import add_devices, connect_token
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


@pytest.fixture
def serials(ann: TestClient, resources: ServerResources, sim: RunningSimulator) -> list[str]:
    """A connected token ``acme`` with four synced devices, and a profile ``Staff``."""
    server_uuid = connect_token(resources.session_factory, resources.settings, sim, generate_key=resources.generate_key)
    made = add_devices(sim, server_uuid, 4)
    _post(ann, "/console/tokens/acme", "/console/tokens/acme/sync")
    assert _post(ann, "/console/profiles/new", "/console/profiles/new", name="Staff").status_code == 303
    return made


def _post(client: TestClient, page: str, action: str, **data: object) -> object:
    answer = client.post(action, data={**data, "csrf_token": csrf_of(client.get(page).text)})
    return answer


def _events(resources: ServerResources, action: str) -> list[AuditEvent]:
    with transaction(resources.session_factory) as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        session.expunge_all()
    return events


def _queued_or_assigned(resources: ServerResources) -> int:
    with transaction(resources.session_factory) as session:
        where = Device.assigned_profile_id.is_not(None)
        return session.scalar(select(func.count()).select_from(Device).where(where)) or 0


def test_the_default_profile_is_set_and_cleared_on_the_token_page(
    ann: TestClient, resources: ServerResources, serials: list[str]
) -> None:
    page = ann.get("/console/tokens/acme")
    assert 'id="set-default"' in page.text and '<option value="Staff"' in page.text
    answer = _post(ann, "/console/tokens/acme", "/console/tokens/acme/default-profile", profile="Staff")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    shown = ann.get("/console/tokens/acme").text
    assert "get profile Staff" in shown and '<option value="Staff" selected>' in shown
    (event,) = _events(resources, "profile.set_default")
    assert (event.actor, event.interface, event.target, event.detail) == (
        "ann@example.com",
        "console",
        "acme",
        {"profile": "Staff"},
    )
    assert event.source == "testclient"
    cleared = _post(ann, "/console/tokens/acme", "/console/tokens/acme/default-profile", profile="")
    assert cleared.status_code == 303  # type: ignore[attr-defined]
    with transaction(resources.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(TokenDefaultProfile)) == 0


def test_an_unknown_default_profile_is_refused_in_place(
    ann: TestClient, resources: ServerResources, serials: list[str]
) -> None:
    answer = _post(
        ann, "/console/tokens/acme", "/console/tokens/acme/default-profile", profile="<script>alert(1)</script>"
    )
    assert answer.status_code == 400  # type: ignore[attr-defined]
    text = answer.text  # type: ignore[attr-defined]
    assert 'role="alert"' in text and "<script>alert(1)" not in text and "Traceback" not in text
    assert _events(resources, "profile.set_default") == []
    oversized = _post(ann, "/console/tokens/acme", "/console/tokens/acme/default-profile", profile="x" * 5000)
    assert oversized.status_code == 400  # type: ignore[attr-defined]


def test_devices_are_assigned_by_serial_and_sent_to_apple(
    ann: TestClient, resources: ServerResources, serials: list[str]
) -> None:
    page = ann.get("/console/profiles/Staff")
    assert 'id="assign-devices"' in page.text
    chosen = "\n".join(serials[:2])
    answer = _post(ann, "/console/profiles/Staff", "/console/profiles/Staff/assign", which="serials", serials=chosen)
    assert answer.status_code == 303  # type: ignore[attr-defined]
    assert "2 devices are queued" in ann.get("/console/profiles/Staff").text
    # The background send ran against the simulated Apple: both devices hold the profile there.
    device = ann.get(f"/console/devices/{serials[0]}").text
    assert "Staff" in device
    (event,) = _events(resources, "profile.assign")
    assert (event.actor, event.interface, event.target) == ("ann@example.com", "console", "Staff")
    assert event.detail["queued"] == 2
    assert _queued_or_assigned(resources) == 2


def test_every_unassigned_device_and_a_tokens_devices_can_be_chosen(
    ann: TestClient, resources: ServerResources, serials: list[str]
) -> None:
    answer = _post(ann, "/console/profiles/Staff", "/console/profiles/Staff/assign", which="unassigned")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    assert _queued_or_assigned(resources) == 4
    again = _post(ann, "/console/profiles/Staff", "/console/profiles/Staff/assign", which="token", token="acme")
    assert again.status_code == 303  # type: ignore[attr-defined]
    assert len(_events(resources, "profile.assign")) == 2


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"which": "serials", "serials": "NOTADEVICE1"}, "not devices Pippin can assign"),
        ({"which": "serials", "serials": "<script>alert(1)</script>"}, "not serial numbers"),
        ({"which": "serials", "serials": ""}, "at least one serial"),
        ({"which": "serials", "serials": "A" * 300_000}, "too long"),
        ({"which": "serials", "serials": " ".join(f"S{n:06d}" for n in range(10_001))}, "more than 10,000"),
        ({"which": "everything"}, "Choose which devices"),
        ({"which": "token", "token": "nope"}, "nope"),
    ],
)
def test_bad_assignments_are_refused_and_change_nothing(
    ann: TestClient, resources: ServerResources, serials: list[str], fields: dict[str, str], expected: str
) -> None:
    answer = _post(ann, "/console/profiles/Staff", "/console/profiles/Staff/assign", **fields)
    assert answer.status_code in (400, 404)  # type: ignore[attr-defined]
    text = answer.text  # type: ignore[attr-defined]
    assert expected in text and "<script>alert(1)" not in text and "Traceback" not in text
    assert _queued_or_assigned(resources) == 0
    assert _events(resources, "profile.assign") == []


def test_read_only_admins_and_forged_forms_neither_assign_nor_set_defaults(
    rita: TestClient, ann: TestClient, resources: ServerResources, serials: list[str]
) -> None:
    page = rita.get("/console/profiles/Staff")
    assert page.status_code == 200 and 'id="assign-devices"' not in page.text
    assert "disabled" in rita.get("/console/tokens/acme").text
    refused = [
        _post(rita, "/console/profiles/Staff", "/console/profiles/Staff/assign", which="unassigned"),
        _post(rita, "/console/tokens/acme", "/console/tokens/acme/default-profile", profile="Staff"),
        ann.post("/console/profiles/Staff/assign", data={"which": "unassigned"}),
        ann.post("/console/tokens/acme/default-profile", data={"profile": "Staff", "csrf_token": "x" * 64}),
    ]
    assert [answer.status_code for answer in refused] == [403] * 4  # type: ignore[attr-defined]
    assert _queued_or_assigned(resources) == 0
    with transaction(resources.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(TokenDefaultProfile)) == 0
        actions = set(session.scalars(select(AuditEvent.action)))
    assert actions.isdisjoint({"profile.assign", "profile.set_default"})
