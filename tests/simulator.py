"""Run `pippin sim apple` on real loopback ports for a test, the way Pippin meets Apple: over HTTP (and HTTP/2).

:func:`run_simulator` serves the simulator's HTTP app; given ``trusted_push_cas`` it also serves the simulated
APNs provider API (:func:`run_apns`) sharing the same push-token registry, as ``pippin sim apple`` does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509

from pippin.sim.apns_delivery import APNsDelivery
from pippin.sim.apns_server import APNsServer
from pippin.sim.apns_tls import issue_server_certificate
from pippin.sim.app import create_app
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
    loop = asyncio.new_event_loop()
    started = threading.Event()
    ports: list[int] = []
    stop = asyncio.Event()

    async def serve() -> None:
        listener = await server.start("127.0.0.1", 0)
        ports.append(listener.sockets[0].getsockname()[1])
        started.set()
        try:
            await stop.wait()
        finally:
            listener.close()
            connections = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in connections:
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)
            await listener.wait_closed()

    def run() -> None:
        loop.run_until_complete(serve())
        loop.run_until_complete(loop.shutdown_default_executor())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(START_TIMEOUT_SECONDS):
        raise RuntimeError("the APNs server did not start")
    try:
        yield RunningAPNs(url=f"https://127.0.0.1:{ports[0]}", port=ports[0], ca_path=tls.ca_path, delivery=delivery)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=START_TIMEOUT_SECONDS)
        loop.close()


@contextmanager
def run_simulator(
    data_dir: Path | None = None, *, trusted_push_cas: Callable[[], Sequence[x509.Certificate]] | None = None
) -> Iterator[RunningSimulator]:
    """Serve a simulator (fresh state unless ``data_dir`` holds one) until the block ends; with APNs too when
    ``trusted_push_cas`` names the CAs push certificates must chain to."""
    state = open_state(data_dir)
    delivery = APNsDelivery(state)
    try:
        with (
            serve_in_thread(create_app(state, apns=delivery), lifespan="off") as base_url,
            httpx.Client(base_url=base_url, timeout=30) as portal,
        ):
            running = RunningSimulator(base_url=base_url, state=state, portal=portal)
            if trusted_push_cas is None:
                yield running
                return
            with run_apns(state, delivery, trusted_push_cas) as apns:
                running.apns = apns
                yield running
    finally:
        state.engine.dispose()
