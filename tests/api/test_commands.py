"""The command routes: translation only (statuses, shapes, hostile input, who may approve); the use cases are
tested in tests/mdm."""

from __future__ import annotations

import plistlib
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pippin.admin.api_tokens import create_api_token
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import Command, CommandStatus, EnrollmentStatus
from tests.actors import TEST_ACTOR
from tests.api.rows import every_row
from tests.clocks import Clock
from tests.mdm.command_fleet import NOW, acme_token, enrolled_device


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def server_clients(clock: Clock) -> dict[str, Any]:
    return {"clock": clock}


@pytest.fixture
def fleet(resources: ServerResources) -> None:
    with transaction(resources.session_factory) as session:
        token = acme_token(session)
        for serial in ("C01", "C02", "C03"):
            enrolled_device(session, serial, token=token)
        enrolled_device(session, "OUT1", token=token, status=EnrollmentStatus.unenrolled)
        enrolled_device(session, "M01", dep=False)


@pytest.fixture
def other_admin(resources: ServerResources) -> dict[str, str]:
    with transaction(resources.session_factory) as session:
        _, plaintext = create_api_token(session, name="second-admin", scope="read-write", actor=TEST_ACTOR)
    return {"Authorization": f"Bearer {plaintext}"}


def test_a_command_is_queued_listed_and_canceled(client: TestClient, auth: dict[str, str], fleet: None) -> None:
    sent = client.post(
        "/api/v1/devices/C01/commands",
        json={"request_type": "DeviceLock", "payload": {"Message": "Call IT", "PhoneNumber": "+46 8 1"}},
        headers=auth,
    )
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert body["status"] == "queued" and body["request_type"] == "DeviceLock" and body["udid"] == "UDID-C01"
    listed = client.get("/api/v1/devices/C01/commands", headers=auth)
    assert listed.status_code == 200
    assert [(c["command_uuid"], c["status"]) for c in listed.json()] == [(body["command_uuid"], "queued")]
    cancel = f"/api/v1/devices/C01/commands/{body['command_uuid']}/cancel"
    canceled = client.post(cancel, headers=auth)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    again = client.post(cancel, headers=auth)
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    assert client.post("/api/v1/devices/C01/commands/NOPE/cancel", headers=auth).status_code == 404
    manual = client.post("/api/v1/devices/M01/commands", json={"request_type": "DeviceInformation"}, headers=auth)
    assert manual.status_code == 201 and manual.json()["udid"] == "UDID-M01"


def test_every_status_is_listed_with_its_times_error_chain_and_parsed_answer(
    client: TestClient, auth: dict[str, str], fleet: None, resources: ServerResources
) -> None:
    for _ in CommandStatus:
        answer = client.post("/api/v1/devices/C02/commands", json={"request_type": "ProfileList"}, headers=auth)
        assert answer.status_code == 201
    chain = [{"ErrorCode": 12021, "ErrorDomain": "MCMDMErrorDomain", "LocalizedDescription": "Not now"}]
    with transaction(resources.session_factory) as session:
        ids = list(session.scalars(select(Command.id).order_by(Command.id)))
        for command_id, status in zip(ids, CommandStatus, strict=True):
            values: dict[str, Any] = {"status": status}
            if status is CommandStatus.error:
                values["error_chain"] = chain
            if status is CommandStatus.acknowledged:
                report = {"Status": "Acknowledged", "UDID": "UDID-C02", "ProfileList": [{"PayloadIdentifier": "x"}]}
                values["answer_encrypted"] = resources.secret_box.encrypt(plistlib.dumps(report))
                values["answered_at"] = NOW
            session.execute(update(Command).where(Command.id == command_id).values(**values))
    listed = client.get("/api/v1/devices/C02/commands", headers=auth).json()
    assert {c["status"] for c in listed} == {status.value for status in CommandStatus}
    by_status = {c["status"]: c for c in listed}
    assert by_status["error"]["error_chain"] == chain
    acknowledged = by_status["acknowledged"]
    assert acknowledged["answered_at"].startswith("2026-03-02T09:00")
    assert acknowledged["response"]["ProfileList"] == [{"PayloadIdentifier": "x"}]
    assert {"created_at", "sent_at", "answered_at", "finished_at"} <= set(acknowledged)
    assert len(client.get("/api/v1/devices/C02/commands", params={"limit": 2}, headers=auth).json()) == 2


HOSTILE: list[tuple[str, dict[str, Any], int, str]] = [
    ("C01", {"content": b'{"request_type": "DeviceLock",', "headers": {"content-type": "application/json"}}, 422, ""),
    ("C01", {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}}, 422, ""),
    ("C01", {"json": {"request_type": "MakeCoffee"}}, 400, "command_rejected"),
    ("C01", {"json": {"request_type": "Device Lock"}}, 422, ""),
    ("C01", {"json": {"request_type": "DeviceLock", "payload": {"Message": 42}}}, 400, "command_rejected"),
    ("C01", {"json": {"request_type": "DeviceLock", "payload": {"Nope": "x"}}}, 400, "command_rejected"),
    ("C01", {"json": {"request_type": "DeviceLock", "payload": ["Message"]}}, 422, ""),
    ("C01", {"json": {"request_type": "DeviceLock", "extra": 1}}, 422, ""),
    ("C01", {"json": {"payload": {}}}, 422, ""),
    (
        "C01",
        {
            "content": b'{"request_type": "DeviceLock", "request_type": "EraseDevice"}',
            "headers": {"content-type": "application/json"},
        },
        422,
        "",
    ),
    ("C01", {"json": {"request_type": "DeviceLock", "payload": {"Message": "x" * 2_000_000}}}, 413, "too_large"),
    ("C01", {"json": {"request_type": "InstallProfile", "payload": {"Payload": "bm90IGEgcHJvZmlsZQ=="}}}, 400, ""),
    ("NOPE", {"json": {"request_type": "DeviceInformation"}}, 404, "not_found"),
    ("OUT1", {"json": {"request_type": "DeviceInformation"}}, 409, "device_not_enrolled"),
    ("C\u202e01", {"json": {"request_type": "DeviceInformation"}}, 400, "invalid_input"),
    ("C" * 65, {"json": {"request_type": "DeviceInformation"}}, 400, "invalid_input"),
]


@pytest.mark.parametrize(("serial", "request_kwargs", "status", "code"), HOSTILE)
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    client: TestClient,
    auth: dict[str, str],
    fleet: None,
    resources: ServerResources,
    serial: str,
    request_kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    assert client.get("/api/v1/devices/C01/commands", headers=auth).status_code == 200  # the token's first use
    before = every_row(resources)
    headers = {**auth, **request_kwargs.pop("headers", {})}
    answer = client.post(f"/api/v1/devices/{serial}/commands", headers=headers, **request_kwargs)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["message"] and (not code or body["error"] == code)
    assert every_row(resources) == before


def test_a_bulk_command_by_serials_or_filter_answers_the_number_of_devices(
    client: TestClient, auth: dict[str, str], fleet: None
) -> None:
    by_serial = client.post(
        "/api/v1/commands", json={"request_type": "DeviceInformation", "serials": ["C01", "C02"]}, headers=auth
    )
    assert by_serial.status_code == 202, by_serial.text
    assert by_serial.json()["devices"] == 2 and by_serial.json()["bulk_id"]
    by_token = client.post("/api/v1/commands", json={"request_type": "SecurityInfo", "token": "acme"}, headers=auth)
    assert by_token.status_code == 202
    assert (by_token.json()["devices"], by_token.json()["not_enrolled"]) == (3, 1)
    by_search = client.post("/api/v1/commands", json={"request_type": "SecurityInfo", "search": "C0"}, headers=auth)
    assert by_search.json()["devices"] == 3
    by_state = client.post("/api/v1/commands", json={"request_type": "ProfileList", "state": "enrolled"}, headers=auth)
    assert by_state.json()["devices"] == 4  # the manual enrollment too


def test_a_bulk_command_sent_again_with_its_bulk_id_queues_nothing_twice(
    client: TestClient, auth: dict[str, str], fleet: None
) -> None:
    body = {
        "request_type": "SecurityInfo",
        "serials": ["C01", "C02"],
        "bulk_id": "3F2B8E6A-4C1D-4E5F-9A7B-0C1D2E3F4A5B",
    }
    first = client.post("/api/v1/commands", json=body, headers=auth)
    assert first.status_code == 202, first.text
    assert (first.json()["devices"], first.json()["bulk_id"]) == (2, body["bulk_id"].lower())
    again = client.post("/api/v1/commands", json=body, headers=auth)
    assert (again.json()["devices"], again.json()["already_queued"]) == (0, 2)
    assert len(client.get("/api/v1/devices/C01/commands", headers=auth).json()) == 1


BULK_REFUSALS: list[tuple[dict[str, Any], int]] = [
    ({"request_type": "DeviceInformation"}, 422),
    ({"request_type": "DeviceInformation", "serials": ["C01"], "state": "enrolled"}, 422),
    ({"request_type": "DeviceInformation", "serials": []}, 422),
    ({"request_type": "DeviceInformation", "state": "bogus"}, 422),
    ({"request_type": "DeviceInformation", "serials": ["C01", "NOPE"]}, 404),
    ({"request_type": "DeviceInformation", "serials": ["C01", "OUT1"]}, 409),
    ({"request_type": "DeviceInformation", "serials": [""]}, 422),
    ({"request_type": "DeviceInformation", "serials": [7]}, 422),
    ({"request_type": "ClearPasscode", "serials": ["C01"]}, 400),
    ({"request_type": "Unknown", "state": "enrolled"}, 400),
    ({"request_type": "DeviceInformation", "token": "a\x00b"}, 422),
    ({"request_type": "DeviceInformation", "serials": ["C01"], "bulk_id": "not-a-uuid"}, 422),
    ({"request_type": "DeviceInformation", "serials": ["C01"], "bulk_id": 7}, 422),
    ({"request_type": "DeviceInformation", "serials": ["C01"], "expires_in": "soon"}, 422),
    ({"request_type": "DeviceInformation", "serials": ["C01"], "expires_in": "P400D"}, 400),
    ({"request_type": "DeviceInformation", "serials": ["C01"], "expires_in": -5}, 400),
]


@pytest.mark.parametrize(("body", "status"), BULK_REFUSALS)
def test_a_refused_bulk_command_queues_nothing(
    client: TestClient, auth: dict[str, str], fleet: None, resources: ServerResources, body: dict[str, Any], status: int
) -> None:
    assert client.get("/api/v1/devices/C01/commands", headers=auth).status_code == 200  # the token's first use
    before = every_row(resources)
    answer = client.post("/api/v1/commands", json=body, headers=auth)
    assert answer.status_code == status, answer.text
    assert every_row(resources) == before


def test_a_bulk_erase_waits_for_a_second_admin(
    client: TestClient, auth: dict[str, str], other_admin: dict[str, str], fleet: None
) -> None:
    asked = client.post("/api/v1/commands", json={"request_type": "EraseDevice", "token": "acme"}, headers=auth)
    assert asked.status_code == 202, asked.text
    approval = asked.json()["approval"]
    assert approval["status"] == "pending" and approval["devices"] == 3 and asked.json()["bulk_id"] is None
    assert client.get("/api/v1/devices/C01/commands", headers=auth).json() == []
    path = f"/api/v1/command-approvals/{approval['id']}"
    own = client.post(f"{path}/approve", headers=auth)
    assert own.status_code == 409 and own.json()["error"] == "approval_refused" and "own" in own.json()["message"]
    approved = client.post(f"{path}/approve", headers=other_admin)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["queued"], approved.json()["approved_by"]) == (
        "queued",
        3,
        "second-admin",
    )
    assert [c["request_type"] for c in client.get("/api/v1/devices/C01/commands", headers=auth).json()] == [
        "EraseDevice"
    ]
    assert client.post(f"{path}/approve", headers=other_admin).status_code == 409
    assert client.get(path, headers=auth).json()["status"] == "queued"
    assert [a["id"] for a in client.get("/api/v1/command-approvals", headers=auth).json()] == [approval["id"]]


def test_an_expired_or_unknown_approval_is_refused(
    client: TestClient, auth: dict[str, str], other_admin: dict[str, str], fleet: None, clock: Clock
) -> None:
    asked = client.post("/api/v1/commands", json={"request_type": "EraseDevice", "serials": ["C01"]}, headers=auth)
    approval_id = asked.json()["approval"]["id"]
    clock.advance(hours=25)
    expired = client.post(f"/api/v1/command-approvals/{approval_id}/approve", headers=other_admin)
    assert expired.status_code == 409 and "expired" in expired.json()["message"]
    assert client.get(f"/api/v1/command-approvals/{approval_id}", headers=auth).json()["status"] == "expired"
    for bad, status in (("999", 404), ("0", 422), ("1e3", 422), ("99999999999", 422), ("-1", 422)):
        answer = client.post(f"/api/v1/command-approvals/{bad}/approve", headers=other_admin)
        assert answer.status_code == status, (bad, answer.text)


def test_a_read_only_token_reads_commands_but_cannot_send_cancel_or_approve(
    client: TestClient, auth: dict[str, str], fleet: None, resources: ServerResources
) -> None:
    with transaction(resources.session_factory) as session:
        _, plaintext = create_api_token(session, name="dashboard", scope="read-only", actor=TEST_ACTOR)
    reader = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/api/v1/devices/C01/commands", headers=reader).status_code == 200  # the token's first use
    before = every_row(resources)
    for path, body in (
        ("/api/v1/devices/C01/commands", {"request_type": "DeviceInformation"}),
        ("/api/v1/commands", {"request_type": "DeviceInformation", "serials": ["C01"]}),
        ("/api/v1/devices/C01/commands/X/cancel", None),
        ("/api/v1/command-approvals/1/approve", None),
    ):
        answer = client.post(path, json=body, headers=reader)
        assert answer.status_code == 403 and answer.json()["error"] == "read_only_token", path
    assert every_row(resources) == before
    assert client.get("/api/v1/devices/C01/commands", headers=reader).status_code == 200
    assert client.post("/api/v1/devices/C01/commands", json={"request_type": "X"}).status_code == 401


def test_a_command_may_wait_less_than_the_setting(client: TestClient, auth: dict[str, str], fleet: None) -> None:
    queued = client.post(
        "/api/v1/devices/C01/commands", json={"request_type": "DeviceLocation", "expires_in": "PT1H"}, headers=auth
    )
    assert queued.status_code == 201, queued.text
    bulk = client.post(
        "/api/v1/commands", json={"request_type": "SecurityInfo", "serials": ["C01"], "expires_in": 600}, headers=auth
    )
    assert bulk.status_code == 202, bulk.text
    listed = client.get("/api/v1/devices/C01/commands", headers=auth).json()
    waits = sorted(datetime.fromisoformat(c["expires_at"]) - datetime.fromisoformat(c["created_at"]) for c in listed)
    assert waits == [timedelta(minutes=10), timedelta(hours=1)]
