"""Fixtures for the simulated APNs: a simulator serving APNs with a test push CA, clients with push certificates.

``apns`` is one simulator per test module (its clock is never moved; faults are reset after each test);
``fresh_apns`` is a simulator of the test's own, for tests that move the clock or restart it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from sqlalchemy import select

from pippin.sim.models import SimOrganization
from tests.servers import START_TIMEOUT_SECONDS
from tests.sim.push_certs import APNsTestClient, PushCA, PushCertificate, client_context
from tests.simulator import RunningAPNs, RunningSimulator, run_simulator


@dataclass
class APNsWorld:
    """A running simulator with APNs, the push CA it trusts, and one valid push certificate."""

    sim: RunningSimulator
    ca: PushCA
    push: PushCertificate
    files: Path
    trusted: list[x509.Certificate] = field(default_factory=list)

    @property
    def apns(self) -> RunningAPNs:
        assert self.sim.apns is not None
        return self.sim.apns

    def client(self, push: PushCertificate | None = None, **context: Any) -> APNsTestClient:
        """An HTTP/2 provider client presenting ``push`` (default: the world's valid certificate)."""
        return APNsTestClient(
            self.apns.url, client_context(self.apns.ca_path, push or self.push, self.files, **context)
        )

    def anonymous_client(self, **context: Any) -> APNsTestClient:
        return APNsTestClient(self.apns.url, client_context(self.apns.ca_path, None, self.files, **context))

    def register(self, topic: str | None = None) -> str:
        """A device's new push token for ``topic`` (default: the world's certificate's)."""
        response = self.sim.portal.post("/apns/tokens", json={"topic": topic or self.push.topic})
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token

    def next(self, token: str, timeout: float = 0) -> httpx.Response:
        return self.sim.portal.get(f"/apns/tokens/{token}/next", params={"timeout": str(timeout)})

    def stats(self, token: str | None = None) -> dict[str, Any]:
        response = self.sim.portal.get("/apns/stats", params={"token": token} if token else None)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_for_device(self, token: str, count: int = 1, *, fewer: bool = False) -> None:
        """Until ``count`` devices (or, with ``fewer``, at most that many) wait on ``token``: an event seen over
        HTTP, with a generous upper bound."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while (self.stats(token)["waiting"] > count) if fewer else (self.stats(token)["waiting"] < count):
            assert time.monotonic() < deadline, "the device never started waiting"
            time.sleep(0.005)

    def set_faults(self, config: dict[str, Any]) -> None:
        response = self.sim.portal.put("/portal/faults", json=config)
        assert response.status_code == 200, response.text


class WaitingDevice:
    """A device long-polling ``/next`` in a thread of its own; :meth:`result` is its answer."""

    def __init__(self, world: APNsWorld, token: str, timeout: float = 30) -> None:
        self._response: httpx.Response | None = None
        self._client = httpx.Client(base_url=world.sim.base_url, timeout=timeout + 30)

        def wait() -> None:
            self._response = self._client.get(f"/apns/tokens/{token}/next", params={"timeout": str(timeout)})

        self._thread = threading.Thread(target=wait, daemon=True)
        self._thread.start()

    def result(self) -> httpx.Response:
        self._thread.join(timeout=START_TIMEOUT_SECONDS + 60)
        self._client.close()
        assert self._response is not None, "the device's wait did not end"
        return self._response


def _world(data_dir: Path, files: Path) -> Iterator[APNsWorld]:
    ca = PushCA.create()
    trusted = [ca.certificate]
    with run_simulator(data_dir, trusted_push_cas=lambda: list(trusted)) as sim:
        yield APNsWorld(sim=sim, ca=ca, push=ca.issue(), files=files, trusted=trusted)


@pytest.fixture(scope="module")
def shared_apns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APNsWorld]:
    yield from _world(tmp_path_factory.mktemp("apns-sim"), tmp_path_factory.mktemp("apns-certs"))


@pytest.fixture
def apns(shared_apns: APNsWorld) -> Iterator[APNsWorld]:
    """The module's simulator with APNs; faults and the trusted CAs are put back after the test."""
    yield shared_apns
    shared_apns.trusted[:] = [shared_apns.ca.certificate]
    with shared_apns.sim.state.transaction() as session:
        session.scalars(select(SimOrganization)).one().faults = {}


@pytest.fixture
def fresh_apns(tmp_path: Path) -> Iterator[APNsWorld]:
    """A simulator with APNs of the test's own: its clock may move."""
    (tmp_path / "certs").mkdir()
    yield from _world(tmp_path / "sim", tmp_path / "certs")
