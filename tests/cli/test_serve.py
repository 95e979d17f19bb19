"""`pippin serve`: a real process on a free loopback port answering /healthz; bad flags refused before binding."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from pippin import __version__
from pippin.cli.main import app
from tests.servers import free_port

PIPPIN = Path(sys.executable).with_name("pippin")


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PIPPIN_DATA_DIR": str(tmp_path / "data"),
        "PIPPIN_DATABASE_URL": f"sqlite:///{tmp_path / 'pippin.db'}",
        "PIPPIN_SECRET_KEY": Fernet.generate_key().decode(),
        "PIPPIN_DEP_BASE_URL": "http://127.0.0.1:9",
    }


def test_serve_runs_as_a_process_and_answers_healthz(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(PIPPIN), "serve", "--port", str(port)],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"pippin serve did not start: {process.stderr.read()!r}") from None
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "version": __version__, "database": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/dep/tokens").status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells how it ended.
    assert process.returncode in (0, -signal.SIGTERM), stderr.decode()
    assert "Shutting down" in stderr.decode()
    assert f"http://127.0.0.1:{port}" in stderr.decode()


@pytest.mark.parametrize(
    ("flags", "code"),
    [(["--port", "0"], 2), (["--port", "70000"], 2), (["--port", "http"], 2), (["--host", "not a host!"], 2)],
)
def test_bad_flags_are_refused(tmp_path: Path, flags: list[str], code: int) -> None:
    result = CliRunner().invoke(app, ["serve", *flags], env=_env(tmp_path))
    assert result.exit_code == code


def test_a_taken_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port)], env=_env(tmp_path))
    assert result.exit_code == 5
    assert "--port" in result.stderr
