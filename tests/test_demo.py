"""`make demo` walks the seed's steps 2 to 7 and ends with a server answering: checked as a whole."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "tools" / "demo.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_demo_walks_the_seed_and_leaves_devices_not_contacted(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            str(DEMO),
            "--check",
            "--data",
            str(data),
            "--sim-port",
            str(_free_port()),
            "--port",
            str(_free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for step in ("Seed step 2", "Seed step 3", "Seed step 4", "Seed step 5", "Seed step 6", "Seed step 7"):
        assert step in result.stdout
    assert "demo check passed" in result.stdout
    # The key pair, the token as Apple ships it, and Pippin's own database are where the demo says.
    assert (data / "pippin-demo.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert b"application/pkcs7-mime" in (data / "pippin-demo_smime.p7m").read_bytes()
    assert (data / "pippin" / "pippin.db").exists()
