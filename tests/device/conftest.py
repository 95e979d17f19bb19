"""A server whose device endpoints know a test SCEP CA's identities, with the push certificate's topic set."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.store.models import PUSH_CERTIFICATE_ID, CheckinMessage, Enrollment, PushCertificate
from tests.clocks import Clock
from tests.mdm.device_identities import NOW, IssuedIdentities, make_authority
from tests.servers import build_server, mounted_app, resources_of

#: The topic of the real captures in ../shared/fixtures/nanomdm.
NANOMDM_TOPIC = "com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9"
AUTHORITY = make_authority()


@dataclass
class DeviceServer:
    client: TestClient
    identities: IssuedIdentities
    clock: Clock
    settings: Settings

    def session(self) -> Session:
        return resources_of(self.client.app).session_factory()  # type: ignore[arg-type]

    def put(self, path: str, body: bytes, *, signature: str | None, **headers: str):  # type: ignore[no-untyped-def]
        if signature is not None:
            headers["Mdm-Signature"] = signature
        return self.client.put(
            f"/mdm/{path}", content=body, headers={"Content-Type": "application/x-apple-aspen-mdm-checkin", **headers}
        )

    def stored(self) -> tuple[int, int]:
        """How many enrollments and raw messages the database holds."""
        with self.session() as session:
            return (
                session.scalar(select(func.count()).select_from(Enrollment)) or 0,
                session.scalar(select(func.count()).select_from(CheckinMessage)) or 0,
            )


def build_device_server(settings: Settings, *, peer: tuple[str, int] = ("testclient", 50000)) -> DeviceServer:
    clock = Clock(NOW)
    server = build_server(settings, clock=clock)
    identities = IssuedIdentities(authority=AUTHORITY)
    mounted_app(server, "/mdm").state.device_identities = identities
    with resources_of(server).session_factory() as session, session.begin():
        session.add(PushCertificate(id=PUSH_CERTIFICATE_ID, topic=NANOMDM_TOPIC))
    return DeviceServer(client=TestClient(server, client=peer), identities=identities, clock=clock, settings=settings)


@pytest.fixture
def devices(settings: Settings) -> Iterator[DeviceServer]:
    built = build_device_server(settings)
    with built.client:
        yield built
    resources_of(built.client.app).engine.dispose()  # type: ignore[arg-type]
