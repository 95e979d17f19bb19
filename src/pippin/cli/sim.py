"""`pippin sim apple`: serve the simulator of Apple's DEP service, Business Manager and Push Certificates Portal.

The one product module allowed to import ``pippin.sim`` (it only starts it; Pippin itself meets the
simulator over HTTP, like Apple).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pippin.cli.output import stdout
from pippin.errors import InvalidInput

if TYPE_CHECKING:
    from pippin.sim.state import SimState

MAX_SEED_DEVICES = 1_000_000

sim_app = typer.Typer(help="Simulators of Apple's side, for tests and demos.", no_args_is_help=True)


@sim_app.command("apple")
def apple(
    host: str = typer.Option(
        "127.0.0.1", help="Address to listen on (keep it on loopback: the simulator has no auth)."
    ),
    port: int = typer.Option(8081, help="TCP port, 1-65535."),
    data: Path = typer.Option(
        Path("./var/sim"), "--data", help="Directory of the simulator's state; kept across restarts."
    ),
    devices: int = typer.Option(0, help=f"Unassigned devices to create when DATA is new (0-{MAX_SEED_DEVICES:,})."),
    seed: int | None = typer.Option(None, help="Seed for device generation, for reproducible serials and models."),
) -> None:
    """Serve Apple's DEP API, Business Manager and the Push Certificates Portal (JSON and pages under /portal/)."""
    if not 1 <= port <= 65535:
        raise InvalidInput(f"--port {port} is not a TCP port.", hint="Use a number from 1 to 65535, e.g. --port 8081.")
    if not 0 <= devices <= MAX_SEED_DEVICES:
        raise InvalidInput(
            f"--devices {devices} is out of range.",
            hint=f"Use 0 to {MAX_SEED_DEVICES:,}; add more later with POST /portal/devices.",
        )
    if data.exists() and not data.is_dir():
        raise InvalidInput(f"--data {data} is a file, not a directory.", hint="Give a directory (created if missing).")
    # Imported here, not at the top: every other `pippin` command starts faster without the simulator.
    import uvicorn

    from pippin.sim.app import create_app
    from pippin.sim.state import open_state

    is_new = not (data / "sim.db").exists()
    try:
        state = open_state(data)
    except OSError as exc:
        raise InvalidInput(
            f"cannot use {data} for the simulator's state: {exc.strerror}.", hint="Check the path and its permissions."
        ) from None
    rng = random.Random(seed)
    if devices and is_new:
        _seed_devices(state, rng, devices)
    elif devices:
        stdout.print(f"{data} already holds a simulator's state; --devices {devices} ignored (state is kept).")
    app = create_app(state)
    app.state.device_rng = rng
    base_url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    stdout.print(f"Apple simulator, state in {data.resolve()}")
    stdout.print(f"  Business Manager pages: {base_url}/portal/")
    stdout.print(f"  Push Certificates:      {base_url}/portal/pages/push")
    stdout.print(f"  portal JSON API:        {base_url}/portal/docs")
    stdout.print(f"  DEP base URL:           {base_url}   (PIPPIN_DEP_BASE_URL={base_url})")
    stdout.print("Press Ctrl-C to stop.")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        state.engine.dispose()


def _seed_devices(state: SimState, rng: random.Random, count: int) -> None:
    from pippin.sim.inventory import MAX_DEVICES_PER_CALL, create_devices

    remaining = count
    while remaining:
        batch = min(remaining, MAX_DEVICES_PER_CALL)
        with state.transaction() as session:
            create_devices(session, rng, count=batch, now=state.clock.now())
        remaining -= batch
    stdout.print(f"Created {count:,} unassigned devices.")
