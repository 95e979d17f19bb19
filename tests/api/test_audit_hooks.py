"""Every change made through /api/v1 leaves exactly one audit event naming the API token and the client;
a refused change leaves none. Reads leave none either."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from pippin.config import Settings
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import AuditEvent
from tests.actors import TEST_ACTOR
from tests.e2e.apple import add_devices
from tests.servers import build_server
from tests.simulator import RunningSimulator

APPLE_ID = "admin@example.com"


@pytest.fixture
def sim_client(settings: Settings, sim: RunningSimulator, auth: dict[str, str]) -> Iterator[TestClient]:
    app = build_server(settings.model_copy(update={"dep_base_url": sim.base_url, "dep_max_retries": 1}))
    with TestClient(app, raise_server_exceptions=False, headers=auth) as client:
        yield client


def _events(resources: ServerResources) -> list[tuple[str, str, str, str | None, str | None]]:
    with transaction(resources.session_factory) as session:
        # The fixtures' own set-up (the API token, say) is recorded as the tests' actor: leave it out.
        rows = session.scalars(select(AuditEvent).where(AuditEvent.actor != TEST_ACTOR.name).order_by(AuditEvent.id))
        return [(event.actor, event.interface, event.action, event.target, event.source) for event in rows]


@pytest.fixture
def one_event(resources: ServerResources) -> Callable[[Response, int, str, str | None], None]:
    """Check that a call answered ``status`` and added exactly one event: ``action`` on ``target`` by the token."""

    def check(answer: Response, status: int, action: str, target: str | None) -> None:
        assert answer.status_code == status, answer.text
        before = check.seen  # type: ignore[attr-defined]
        now = _events(resources)
        assert now[before:] == [("test-admin", "api", action, target, "testclient")]
        check.seen = len(now)  # type: ignore[attr-defined]

    check.seen = 0  # type: ignore[attr-defined]
    return check


def test_each_change_through_the_api_is_one_audit_event(
    sim_client: TestClient,
    sim: RunningSimulator,
    resources: ServerResources,
    one_event: Callable[[Response, int, str, str | None], None],
) -> None:
    pem = sim_client.post("/api/v1/dep/tokens/berlin/keypair")
    one_event(pem, 200, "dep.keypair.create", "berlin")
    server = sim.portal.post(
        "/portal/mdm-servers", json={"name": "Berlin MDM", "public_key_pem": pem.text, "admin_apple_id": APPLE_ID}
    ).json()
    add_devices(sim, server["server_uuid"], 3)
    p7m = sim.portal.get(f"/portal/mdm-servers/{server['server_uuid']}/token").content
    uploaded = sim_client.put(
        "/api/v1/dep/tokens/berlin",
        files={"token": ("berlin_smime.p7m", p7m, "application/pkcs7-mime")},
        data={"apple_id": APPLE_ID},
    )
    one_event(uploaded, 200, "dep.token.upload", "berlin")
    one_event(sim_client.post("/api/v1/dep/tokens/berlin/sync"), 202, "dep.sync.start", "berlin")
    one_event(sim_client.post("/api/v1/profiles", json={"name": "Staff"}), 201, "profile.create", "Staff")
    one_event(sim_client.patch("/api/v1/profiles/Staff", json={"department": "IT"}), 200, "profile.update", "Staff")
    default = sim_client.put("/api/v1/profiles/defaults/berlin", json={"profile": "Staff"})
    one_event(default, 204, "profile.set_default", "berlin")
    assigned = sim_client.post("/api/v1/profiles/Staff/assignments", json={"all_unassigned": True})
    one_event(assigned, 202, "profile.assign", "Staff")
    one_event(sim_client.post("/api/v1/profiles/retry-due"), 202, "profile.retry_due", None)
    one_event(sim_client.post("/api/v1/profiles", json={"name": "Spare"}), 201, "profile.create", "Spare")
    one_event(sim_client.delete("/api/v1/profiles/Spare"), 204, "profile.delete", "Spare")
    # Reading changes nothing and records nothing.
    for path in ("/api/v1/dep/tokens", "/api/v1/dep/tokens/berlin/syncs", "/api/v1/profiles", "/api/v1/devices"):
        assert sim_client.get(path).status_code == 200
    assert len(_events(resources)) == 10


def test_a_refused_change_leaves_no_audit_event(
    client: TestClient, auth: dict[str, str], resources: ServerResources
) -> None:
    refused = [
        client.post("/api/v1/dep/tokens/bad%20name/keypair", headers=auth),
        client.put(
            "/api/v1/dep/tokens/nope",
            headers=auth,
            files={"token": ("x_smime.p7m", b"<script>", "application/pkcs7-mime")},
            data={"apple_id": APPLE_ID},
        ),
        client.post("/api/v1/dep/tokens/nope/sync", headers=auth),
        client.post("/api/v1/profiles", json={"name": "Bad", "locked": True}, headers=auth),
        client.patch("/api/v1/profiles/nope", json={"department": "IT"}, headers=auth),
        client.delete("/api/v1/profiles/nope", headers=auth),
        client.post("/api/v1/profiles/nope/assignments", json={"all_unassigned": True}, headers=auth),
        client.put("/api/v1/profiles/defaults/nope", json={"profile": None}, headers=auth),
        # Without a valid token nothing is even attempted.
        client.post("/api/v1/profiles", json={"name": "Staff"}, headers={"Authorization": "Bearer nope"}),
        client.post("/api/v1/profiles/retry-due"),
    ]
    assert all(answer.status_code >= 400 for answer in refused), [answer.status_code for answer in refused]
    assert _events(resources) == []
