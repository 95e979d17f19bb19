"""Business Manager steps for sync tests: connect a DEP token to a simulated MDM server, fill it with devices,
and read Apple's truth back from the portal to compare with Pippin's inventory."""

from __future__ import annotations

from typing import Any

from pippin.config import Settings
from pippin.crypto.keys import KeyGenerator
from pippin.crypto.secrets import SecretBox
from pippin.dep import token as token_service
from pippin.store.db import SessionFactory, transaction
from tests.actors import TEST_ACTOR
from tests.simulator import RunningSimulator

ADMIN = "ann@example.com"


def connect_token(
    factory: SessionFactory,
    settings: Settings,
    sim: RunningSimulator,
    name: str = "acme",
    *,
    generate_key: KeyGenerator | None = None,
) -> str:
    """Steps 2-4 of the seed: key pair, MDM server at Apple, token download and upload. Returns the server UUID."""
    box = SecretBox.from_settings(settings)
    with transaction(factory) as session:
        certificate_pem = token_service.create_keypair(
            session, name=name, box=box, generate_key=generate_key, actor=TEST_ACTOR
        )
    created = sim.portal.post(
        "/portal/mdm-servers",
        json={"name": f"{name} MDM", "public_key_pem": certificate_pem, "admin_apple_id": ADMIN},
    )
    assert created.status_code == 201, created.text
    server_uuid: str = created.json()["server_uuid"]
    p7m = sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token")
    assert p7m.status_code == 200, p7m.text
    token_service.upload_token(
        factory, name=name, p7m=p7m.content, apple_id=ADMIN, box=box, settings=settings, actor=TEST_ACTOR
    )
    return server_uuid


def add_devices(sim: RunningSimulator, server_uuid: str, count: int, *, seed: int = 1) -> list[str]:
    """Buy ``count`` devices and assign them to the MDM server; returns their serials."""
    created = sim.portal.post("/portal/devices", json={"count": count, "seed": seed})
    assert created.status_code == 201, created.text
    serials: list[str] = created.json()["serials"]
    assign(sim, server_uuid, serials)
    return serials


def assign(sim: RunningSimulator, server_uuid: str, serials: list[str]) -> None:
    answer = sim.portal.post("/portal/assignments", json={"server_uuid": server_uuid, "serials": serials})
    assert answer.status_code == 200, answer.text


def unassign(sim: RunningSimulator, serials: list[str]) -> None:
    answer = sim.portal.request("DELETE", "/portal/assignments", json={"serials": serials})
    assert answer.status_code == 200, answer.text


def truth(sim: RunningSimulator, server_uuid: str) -> dict[str, dict[str, Any]]:
    """Every device Apple has assigned to the server now, by serial (``GET /portal/devices?server_uuid=``)."""
    devices: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"server_uuid": server_uuid, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = sim.portal.get("/portal/devices", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        devices.update({device["serial_number"]: device for device in body["devices"]})
        cursor = body["next_cursor"]
        if not cursor:
            return devices
