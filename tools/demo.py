"""`make demo`: run Pippin's world on one machine and show where to look.

Steps, each a function below so later ones (key pair, token upload, sync) slot in:
1. start `pippin sim apple` (the simulated Apple: DEP service and Business Manager) with sample devices,
   state under var/demo/, on port 8081 or a free one;
2. wait until it answers;
3. print where to look and what to try;
4. keep running until Ctrl-C (or, with --check, verify and exit: what the tests run).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DEVICES = 500
SAMPLE_SEED = 2024


@dataclass
class Demo:
    """What the steps share: where things live and the processes started (stopped in reverse order)."""

    data_dir: Path
    port: int
    check: bool
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def pippin_command() -> list[str]:
    """The `pippin` of this virtual environment (or the one on PATH)."""
    beside = Path(sys.executable).with_name("pippin")
    found = str(beside) if beside.exists() else shutil.which("pippin")
    if found is None:
        sys.exit("`pippin` is not installed here: run `make demo` (it installs Pippin into .venv first).")
    return [found]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_simulator(demo: Demo) -> None:
    """Step 1: the simulated Apple, with sample devices the first time (its state is kept between demos)."""
    sim_data = demo.data_dir / "sim"
    command = [*pippin_command(), "sim", "apple", "--port", str(demo.port), "--data", str(sim_data)]
    command += ["--devices", str(SAMPLE_DEVICES), "--seed", str(SAMPLE_SEED)]
    output = subprocess.DEVNULL if demo.check else None  # a check stays quiet unless something fails (stderr)
    demo.processes.append(subprocess.Popen(command, stdout=output))  # noqa: S603 - our own executable, fixed args


def wait_until_answering(demo: Demo, *, timeout: float = 60.0) -> None:
    """Step 2: poll the portal until it answers; fail with the reason if the simulator exits or stalls."""
    deadline = time.monotonic() + timeout
    while True:
        if any(process.poll() is not None for process in demo.processes):
            raise SystemExit("the simulator stopped during start-up; its output above says why")
        try:
            if httpx.get(f"{demo.sim_url}/portal/terms", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the simulator did not answer on {demo.sim_url} within {timeout:.0f} s")
        time.sleep(0.2)


def verify(demo: Demo) -> None:
    """Step 3a (--check): the portal pages render and the sample devices are there."""
    overview = httpx.get(f"{demo.sim_url}/portal/", timeout=10)
    devices = httpx.get(f"{demo.sim_url}/portal/devices", params={"limit": 1}, timeout=10).json()
    if overview.status_code != 200 or devices.get("total", 0) < 1:
        raise SystemExit(f"the simulator answers but is not ready: portal {overview.status_code}, {devices}")
    print(f"demo check passed: simulator at {demo.sim_url} with {devices['total']} devices")


def show_where_to_look(demo: Demo) -> None:
    """Step 3b: tell a person where to go and what to try."""
    url = demo.sim_url
    print(
        f"""
Pippin demo is running (state in {demo.data_dir}).

  Simulated Apple Business Manager:  {url}/portal/
  Its JSON API (try it in the browser): {url}/portal/docs
  Simulated Apple DEP service:        {url}   (PIPPIN_DEP_BASE_URL={url})

Try, in another shell from the repository:
  1. {url}/portal/pages/devices - {SAMPLE_DEVICES} sample iPhones and iPads, none assigned yet.
  2. export PIPPIN_DATA_DIR={demo.data_dir / "pippin"} PIPPIN_DEP_BASE_URL={url}
     .venv/bin/pippin dep keypair demo -o {demo.data_dir / "demo.pem"}
  3. Add an MDM server with that .pem at {url}/portal/pages/servers and download its token.
  4. .venv/bin/pippin dep upload-token demo <downloaded>_smime.p7m --apple-id admin@example.com
  5. Assign devices to the server on the devices page (serials, an order number or a CSV file), then
     .venv/bin/pippin dep sync demo && .venv/bin/pippin devices list

Press Ctrl-C to stop.
"""
    )


def stop(demo: Demo) -> None:
    for process in reversed(demo.processes):
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in reversed(demo.processes):
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="verify that the demo starts and answers, then exit")
    parser.add_argument("--data", type=Path, default=ROOT / "var" / "demo", help="state directory (default var/demo)")
    parser.add_argument("--port", type=int, default=8081, help="simulator port; a free one when it is taken")
    args = parser.parse_args(argv)
    # A polite stop (kill, a closing terminal) stops the simulator too, exactly like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    port = args.port if port_is_free(args.port) else free_port()
    demo = Demo(data_dir=args.data.resolve(), port=port, check=args.check)
    demo.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        start_simulator(demo)
        wait_until_answering(demo)
        if demo.check:
            verify(demo)
            return 0
        show_where_to_look(demo)
        while all(process.poll() is None for process in demo.processes):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the demo")
        return 0
    finally:
        stop(demo)


if __name__ == "__main__":
    sys.exit(main())
