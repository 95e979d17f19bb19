"""Run `pippin sim apple`'s app on a real loopback port for a test, the way Pippin meets Apple: over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from pippin.sim.app import create_app
from pippin.sim.state import SimState, open_state
from tests.servers import serve_in_thread


@dataclass
class RunningSimulator:
    """A simulator serving on ``base_url``; ``portal`` is an HTTP client for its portal and test controls."""

    base_url: str
    state: SimState
    portal: httpx.Client


@contextmanager
def run_simulator(data_dir: Path | None = None) -> Iterator[RunningSimulator]:
    """Serve a simulator (fresh state unless ``data_dir`` holds one) until the block ends."""
    state = open_state(data_dir)
    try:
        with (
            serve_in_thread(create_app(state), lifespan="off") as base_url,
            httpx.Client(base_url=base_url, timeout=30) as portal,
        ):
            yield RunningSimulator(base_url=base_url, state=state, portal=portal)
    finally:
        state.engine.dispose()
