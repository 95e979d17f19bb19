"""The devices and sync routes: translation only (statuses, shapes, hostile input); the services are tested apart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pippin.dep.sync import start_sync
from pippin.dep.wire import DevicePage
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import DEPToken, Device

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def fleet(resources: ServerResources) -> None:
    with transaction(resources.session_factory) as session:
        token = DEPToken(name="acme", status="ok", credentials_encrypted=b"sealed")
        session.add(token)
        session.flush()
        for n in range(5):
            session.add(
                Device(
                    serial_number=f"C0{n}",
                    token_id=token.id,
                    model="iPhone 15" if n % 2 else "iPad Air",
                    profile_status="pushed" if n % 2 else "empty",
                    first_seen_at=NOW,
                    last_synced_at=NOW,
                    apple_record={},
                )
            )


class OnePageApple:
    def fetch_devices(self, *, cursor: str | None = None, limit: int | None = None) -> DevicePage:
        return DevicePage.model_validate({"devices": [{"serial_number": "NEW1"}], "cursor": "f1"})

    def sync_devices(self, *, cursor: str, limit: int | None = None) -> DevicePage:
        return DevicePage.model_validate({"devices": [], "cursor": "s1"})

    def close(self) -> None:
        pass


def test_devices_are_listed_with_the_documented_keys_and_paged(
    client: TestClient, auth: dict[str, str], fleet: None
) -> None:
    first = client.get("/api/v1/devices", params={"limit": 2}, headers=auth)
    assert first.status_code == 200
    body = first.json()
    assert [d["serial_number"] for d in body["devices"]] == ["C00", "C01"]
    assert {"serial_number", "model", "enrollment_state", "token", "first_seen_at", "removed_at"} <= set(
        body["devices"][0]
    )
    rest = client.get("/api/v1/devices", params={"limit": 500, "cursor": body["next_cursor"]}, headers=auth)
    assert [d["serial_number"] for d in rest.json()["devices"]] == ["C02", "C03", "C04"]
    filtered = client.get("/api/v1/devices", params={"search": "iphone", "token": "acme"}, headers=auth)
    assert [d["serial_number"] for d in filtered.json()["devices"]] == ["C01", "C03"]
    assert (
        body["devices"][0]["enrollment_state"] == "not_contacted" and body["devices"][0]["apple_status"] == "assigned"
    )


def test_devices_sort_both_ways_and_filter_what_cannot_enroll(
    client: TestClient, auth: dict[str, str], fleet: None
) -> None:
    params = {"sort": "model", "direction": "desc", "limit": 3}
    first = client.get("/api/v1/devices", params=params, headers=auth).json()
    assert [d["serial_number"] for d in first["devices"]] == ["C03", "C01", "C04"]
    rest = client.get("/api/v1/devices", params={**params, "cursor": first["next_cursor"]}, headers=auth).json()
    assert [d["serial_number"] for d in rest["devices"]] == ["C02", "C00"]
    other_order = client.get("/api/v1/devices", params={"cursor": first["next_cursor"]}, headers=auth)
    assert other_order.status_code == 400 and "another sort order" in other_order.json()["message"]
    blocked = client.get("/api/v1/devices", params={"cannot_enroll": "true"}, headers=auth).json()
    assert [d["serial_number"] for d in blocked["devices"]] == ["C00", "C02", "C04"]
    assert all(d["cannot_enroll"] for d in blocked["devices"])


def test_openapi_lists_the_values_of_every_enum_filter_and_field(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/devices"]["get"]["parameters"]}

    def values(item: dict[str, Any]) -> set[str]:
        found = item.get("enum") or []
        for option in item.get("anyOf", []):
            found += (
                schema["components"]["schemas"][option["$ref"].rsplit("/", 1)[1]]["enum"] if "$ref" in option else []
            )
        if "$ref" in item:
            found += schema["components"]["schemas"][item["$ref"].rsplit("/", 1)[1]]["enum"]
        return set(found)

    assert values(parameters["state"]["schema"]) >= {"not_contacted", "enrolled", "pending_reset", "removed"}
    assert values(parameters["sort"]["schema"]) >= {"serial", "model", "asset_tag", "state", "last_synced"}
    assert values(parameters["direction"]["schema"]) == {"asc", "desc"}
    assert "none" in values(parameters["assignment"]["schema"])
    device = schema["components"]["schemas"]["DeviceRead"]["properties"]
    assert values(device["enrollment_state"]) >= {"not_contacted", "removed"}
    assert values(device["apple_status"]) == {"assigned", "removed"}
    assert values(device["assignment_status"]) >= {"pending", "assigned", "failed"}
    assert values(device["profile_status"]) == {"empty", "assigned", "pushed", "removed"}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"state": "lost"}, 422),
        ({"sort": "color"}, 422),
        ({"direction": "up"}, 422),
        ({"assignment": "maybe"}, 422),
        ({"cursor": "%%%"}, 400),
        ({"limit": 501}, 422),
        ({"limit": 0}, 422),
        ({"search": "x" * 129}, 422),
        ({"cursor": "c" * 401}, 422),
    ],
)
def test_bad_listing_queries_are_refused(
    client: TestClient, auth: dict[str, str], fleet: None, params: dict[str, Any], status: int
) -> None:
    answer = client.get("/api/v1/devices", params=params, headers=auth)
    assert answer.status_code == status and answer.json()["error"]


def test_one_device_by_serial_or_404(client: TestClient, auth: dict[str, str], fleet: None) -> None:
    assert client.get("/api/v1/devices/C03", headers=auth).json()["token"] == "acme"
    missing = client.get("/api/v1/devices/c03", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_a_serial_that_is_not_valid_text_is_a_documented_400(client: TestClient, auth: dict[str, str]) -> None:
    answer = client.get("/api/v1/devices/C0%0A1", headers=auth)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_input"
    described = client.get("/api/openapi.json").json()["paths"]["/api/v1/devices/{serial}"]["get"]
    assert "400" in described["responses"]


def test_devices_need_an_api_token(client: TestClient, fleet: None) -> None:
    assert client.get("/api/v1/devices").status_code == 401


@pytest.mark.parametrize("server_clients", [{"open_dep_client": lambda token: OnePageApple()}], ids=["fake Apple"])
def test_a_sync_starts_with_202_and_runs_in_the_background(
    client: TestClient, auth: dict[str, str], fleet: None
) -> None:
    answer = client.post("/api/v1/dep/tokens/acme/sync", params={"full": "true"}, headers=auth)
    assert answer.status_code == 202
    assert answer.json()["outcome"] == "running" and answer.json()["kind"] == "full"
    history = client.get("/api/v1/dep/tokens/acme/syncs", headers=auth).json()
    assert history[0]["outcome"] == "succeeded" and history[0]["added"] == 1 and history[0]["trigger"] == "api"
    assert client.get("/api/v1/devices/NEW1", headers=auth).status_code == 200
    token = client.get("/api/v1/dep/tokens/acme", headers=auth).json()
    assert token["sync"]["last_run"]["id"] == history[0]["id"] and token["sync"]["running"] is False
    assert client.get("/api/v1/dep/tokens", headers=auth).json()[0]["sync"]["cursor_kind"] == "sync"


def test_a_sync_while_the_window_is_closed_is_a_409_with_retry_after(
    client: TestClient, auth: dict[str, str], fleet: None, resources: ServerResources
) -> None:
    with transaction(resources.session_factory) as session:
        start_sync(session, token_name="acme", settings=resources.settings)
    answer = client.post("/api/v1/dep/tokens/acme/sync", headers=auth)
    assert answer.status_code == 409
    assert answer.json()["error"] == "sync_window_closed"
    window = resources.settings.dep_sync_window.total_seconds()
    assert 0 < int(answer.headers["Retry-After"]) <= window
    assert client.get("/api/v1/dep/tokens/acme", headers=auth).json()["sync"]["running"] is True


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/dep/tokens/nobody/sync", 404),
        ("/api/v1/dep/tokens/acme/sync?full=perhaps", 422),
    ],
)
def test_sync_refusals(client: TestClient, auth: dict[str, str], fleet: None, path: str, status: int) -> None:
    assert client.post(path, headers=auth).status_code == status


def test_sync_history_limits(client: TestClient, auth: dict[str, str], fleet: None) -> None:
    assert client.get("/api/v1/dep/tokens/acme/syncs?limit=0", headers=auth).status_code == 422
    assert client.get("/api/v1/dep/tokens/nobody/syncs", headers=auth).status_code == 404
    assert client.get("/api/v1/dep/tokens/acme/syncs", headers=auth).json() == []
