"""`make demo` walks the seed's steps 1 to 8 and ends with devices enrolled over the air, one of them answering MDM
commands: checked as a whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.servers import free_port

DEMO = Path(__file__).resolve().parents[1] / "tools" / "demo.py"


def test_demo_walks_the_seed_and_ends_with_devices_enrolled_over_the_air(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            str(DEMO),
            "--check",
            "--data",
            str(data),
            "--sim-port",
            str(free_port()),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for step in (
        "Seed step 1",
        "Seed step 2",
        "Seed step 3",
        "Seed step 4",
        "Seed step 5",
        "Seed step 6",
        "Seed step 7",
        "Seed step 8",
    ):
        assert step in result.stdout
    assert "demo check passed" in result.stdout
    assert "Managing an enrolled device" in result.stdout and "DeviceInformation" in result.stdout
    # The key pair, the token as Apple ships it, and Pippin's own database are where the demo says.
    assert (data / "pippin-demo.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert b"application/pkcs7-mime" in (data / "pippin-demo_smime.p7m").read_bytes()
    assert (data / "pippin" / "pippin.db").exists()
