"""Test helpers for the simulator's DEP API: a server with a valid token, and a client that speaks DEP.

The server and token are written straight into the simulator's state (no portal round trip), and ``/session``
is signed with oauthlib exactly as a real DEP client signs it, so the simulator's verification is tested
against an independent implementation of OAuth 1.0a.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, Client
from sqlalchemy import func, insert, select, update

from pippin.sim.models import SimDevice, SimDeviceEvent, SimMDMServer, SimOrganization, SimServerToken
from pippin.sim.state import SimState
from tests.simulator import RunningSimulator, run_simulator

USER_AGENT = "pippin-tests/1.0"


@dataclass(frozen=True)
class ServerCredentials:
    """An MDM server in the simulator and the four OAuth credentials of its current token."""

    server_id: int
    server_uuid: str
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_secret: str


def issue_test_token(
    state: SimState, server_id: int, *, lifetime: timedelta = timedelta(days=365), consumer_key: str | None = None
) -> ServerCredentials:
    """A new token for the server; earlier ones are revoked, as downloading again in Business Manager does."""
    now = state.clock.now()
    with state.transaction() as session:
        server = session.get(SimMDMServer, server_id)
        assert server is not None
        session.execute(
            update(SimServerToken)
            .where(SimServerToken.server_id == server_id, SimServerToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        token = SimServerToken(
            server_id=server_id,
            consumer_key=consumer_key or "CK_" + secrets.token_hex(48),
            consumer_secret="CS_" + secrets.token_hex(20),
            access_token="AT_" + secrets.token_hex(32),
            access_secret="AS_" + secrets.token_hex(20),
            issued_at=now,
            expires_at=now + lifetime,
            revoked_at=None,
        )
        session.add(token)
        session.flush()
        return ServerCredentials(
            server_id=server_id,
            server_uuid=server.server_uuid,
            consumer_key=token.consumer_key,
            consumer_secret=token.consumer_secret,
            access_token=token.access_token,
            access_secret=token.access_secret,
        )


def create_test_server(
    state: SimState, *, name: str = "Pippin MDM", admin: str = "admin@example.com"
) -> ServerCredentials:
    """An MDM server with a valid one-year token."""
    with state.transaction() as session:
        server = SimMDMServer(
            server_uuid=secrets.token_hex(16).upper(),
            name=name,
            admin_apple_id=admin,
            public_key_pem="(not used by these tests)",
            access_denied=False,
            created_at=state.clock.now(),
        )
        session.add(server)
        session.flush()
        server_id = server.id
    return issue_test_token(state, server_id)


def oauth_headers(
    base_url: str,
    credentials: ServerCredentials,
    *,
    nonce: str | None = None,
    timestamp: str | None = None,
    realm: str | None = None,
    consumer_secret: str | None = None,
) -> dict[str, str]:
    """The ``Authorization`` header a DEP client sends to ``GET /session``, signed by oauthlib."""
    client = Client(
        credentials.consumer_key,
        client_secret=consumer_secret if consumer_secret is not None else credentials.consumer_secret,
        resource_owner_key=credentials.access_token,
        resource_owner_secret=credentials.access_secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        realm=realm,
        nonce=nonce,
        timestamp=timestamp,
    )
    _, headers, _ = client.sign(f"{base_url}/session", http_method="GET")
    return {"Authorization": headers["Authorization"]}


class DEPTestClient:
    """A minimal DEP client over real HTTP: signs ``/session``, then sends ``X-ADM-Auth-Session`` on every call."""

    def __init__(self, base_url: str, credentials: ServerCredentials, *, version: int | None = 10) -> None:
        self.base_url = base_url
        self.credentials = credentials
        headers = {"User-Agent": USER_AGENT}
        if version is not None:
            headers["X-Server-Protocol-Version"] = str(version)
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=30)
        self.session_token: str | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> DEPTestClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def open_session(self, **oauth: Any) -> httpx.Response:
        response = self.http.get("/session", headers=oauth_headers(self.base_url, self.credentials, **oauth))
        if response.status_code == 200:
            self.session_token = response.json()["auth_session_token"]
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One API call with the current session (opening one first if needed)."""
        if self.session_token is None:
            opened = self.open_session()
            assert opened.status_code == 200, opened.text
        headers = {"X-ADM-Auth-Session": self.session_token or "", **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()


def seed_devices(
    state: SimState,
    server_id: int,
    count: int,
    *,
    family: str = "iPhone",
    prefix: str | None = None,
    extra: dict[str, Any] | None = None,
) -> list[str]:
    """Bulk-insert ``count`` devices assigned to the server, each with its ``added`` event; returns the serials."""
    prefix = prefix or secrets.token_hex(3).upper()
    now = state.clock.now()
    os_name = {"iPhone": "iOS", "iPad": "iPadOS", "Mac": "OSX"}[family]
    with state.transaction() as session:
        base = (session.scalar(select(func.max(SimDeviceEvent.seq))) or 0) + 1
        devices: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for index in range(count):
            serial = f"{prefix}{index:07d}"
            record = {
                "serial_number": serial,
                "model": f"{family} 15",
                "description": f"{family.upper()} 15 128GB BLACK",
                "color": "BLACK",
                "device_family": family,
                "os": os_name,
                "profile_status": "empty",
                "device_assigned_date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "device_assigned_by": "admin@example.com",
                **(extra or {}),
            }
            devices.append(
                {
                    "serial_number": serial,
                    "model": record["model"],
                    "description": record["description"],
                    "color": "BLACK",
                    "device_family": family,
                    "os": os_name,
                    "order_number": "ORDER1",
                    "asset_tag": None,
                    "extra": dict(extra or {}),
                    "created_at": now,
                    "server_id": server_id,
                    "assign_seq": base + index,
                    "device_assigned_date": now,
                    "device_assigned_by": "admin@example.com",
                    "profile_status": "empty",
                }
            )
            events.append(
                {
                    "seq": base + index,
                    "server_id": server_id,
                    "serial_number": serial,
                    "op_type": "added",
                    "op_date": now,
                    "snapshot": record,
                }
            )
        session.execute(insert(SimDeviceEvent), events)
        session.execute(insert(SimDevice), devices)
    return [row["serial_number"] for row in devices]


def utc(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def shared_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    """One simulator per test module (starting one per test costs more than most tests); never advance its clock."""
    with run_simulator(tmp_path_factory.mktemp("sim")) as running:
        yield running


@pytest.fixture
def apple(shared_sim: RunningSimulator) -> Iterator[RunningSimulator]:
    """The shared simulator with organisation-wide switches (faults, terms, session lifetime) reset after the test."""
    yield shared_sim
    with shared_sim.state.transaction() as session:
        org = session.scalars(select(SimOrganization)).one()
        org.faults = {}
        org.terms_pending = False
        org.session_ttl_seconds = 300


@pytest.fixture
def server(apple: RunningSimulator) -> ServerCredentials:
    """A fresh MDM server with a valid token on the shared simulator."""
    return create_test_server(apple.state)


@pytest.fixture
def client(apple: RunningSimulator, server: ServerCredentials) -> Iterator[DEPTestClient]:
    """A protocol-version-10 DEP client of ``server``."""
    with DEPTestClient(apple.base_url, server) as dep:
        yield dep
