"""Run `pippin sim apple` on real loopback ports for a test, the way Pippin meets Apple: over HTTP (and HTTP/2).

:func:`run_simulator` serves the simulator's HTTP app; given ``trusted_push_cas`` it also serves the simulated
APNs provider API (:func:`run_apns`) sharing the same push-token registry, as ``pippin sim apple`` does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509

from pippin.sim.apns_background import BackgroundAPNs
from pippin.sim.apns_delivery import APNsDelivery
from pippin.sim.apns_server import APNsServer
from pippin.sim.apns_tls import issue_server_certificate
from pippin.sim.app import create_app
from pippin.sim.push_ca import push_ca_certificates
from pippin.sim.state import SimState, open_state
from tests.servers import START_TIMEOUT_SECONDS, serve_in_thread


@dataclass
class RunningAPNs:
    """The simulated APNs provider API on ``url`` (``https://127.0.0.1:PORT``); trust ``ca_path`` to reach it."""

    url: str
    port: int
    ca_path: Path
    delivery: APNsDelivery


@dataclass
class RunningSimulator:
    """A simulator serving on ``base_url``; ``portal`` is an HTTP client for its portal and test controls."""

    base_url: str
    state: SimState
    portal: httpx.Client
    apns: RunningAPNs | None = None


@contextmanager
def run_apns(
    state: SimState, delivery: APNsDelivery, trusted_push_cas: Callable[[], Sequence[x509.Certificate]]
) -> Iterator[RunningAPNs]:
    """Serve the APNs provider API on a free loopback port, on an event loop in a thread of its own."""
    tls = issue_server_certificate(state.data_dir, ["127.0.0.1"])
    server = APNsServer(state=state, delivery=delivery, tls=tls, trusted_push_cas=trusted_push_cas)
    background = BackgroundAPNs(server, "127.0.0.1", 0, start_timeout=START_TIMEOUT_SECONDS)
    try:
        url = f"https://127.0.0.1:{background.port}"
        yield RunningAPNs(url=url, port=background.port, ca_path=tls.ca_path, delivery=delivery)
    finally:
        background.stop(START_TIMEOUT_SECONDS)


@contextmanager
def run_simulator(
    data_dir: Path | None = None,
    *,
    trusted_push_cas: Callable[[], Sequence[x509.Certificate]] | None = None,
    with_apns: bool = False,
) -> Iterator[RunningSimulator]:
    """Serve a simulator (fresh state unless ``data_dir`` holds one) until the block ends; with APNs too when
    ``with_apns`` (trusting the simulated portal's push certificates, as `pippin sim apple` does) or when
    ``trusted_push_cas`` names the CAs push certificates must chain to instead."""
    state = open_state(data_dir)
    delivery = APNsDelivery(state)
    try:
        with (
            serve_in_thread(create_app(state, apns=delivery), lifespan="off") as base_url,
            httpx.Client(base_url=base_url, timeout=30) as portal,
        ):
            running = RunningSimulator(base_url=base_url, state=state, portal=portal)
            if trusted_push_cas is None and with_apns:
                trusted_push_cas = functools.partial(push_ca_certificates, state)
            if trusted_push_cas is None:
                yield running
                return
            with run_apns(state, delivery, trusted_push_cas) as apns:
                running.apns = apns
                yield running
    finally:
        state.engine.dispose()
