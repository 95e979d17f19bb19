"""Run `pippin sim apple`'s app on a real loopback port for a test, the way Pippin meets Apple: over HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from pippin.sim.app import create_app
from pippin.sim.state import SimState, open_state


@dataclass
class RunningSimulator:
    """A simulator serving on ``base_url``; ``portal`` is an HTTP client for its portal and test controls."""

    base_url: str
    state: SimState
    portal: httpx.Client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def run_simulator(data_dir: Path | None = None) -> Iterator[RunningSimulator]:
    """Serve a simulator (fresh state unless ``data_dir`` holds one) until the block ends."""
    state = open_state(data_dir)
    port = _free_port()
    config = uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the simulator did not start")
        time.sleep(0.01)
    base_url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base_url, timeout=30) as portal:
            yield RunningSimulator(base_url=base_url, state=state, portal=portal)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        state.engine.dispose()
