"""`pippin sim apple` as a user runs it: a real process on a free port, state kept across restarts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from pippin.cli.main import app
from tests.servers import free_port
from tests.sim.push_certs import APNsTestClient, PushCA, client_context

PIPPIN = str(Path(sys.executable).with_name("pippin"))


class Finished:
    """Filled in when the process has stopped: its exit code and everything it printed."""

    returncode: int | None = None
    output: str = ""


@contextmanager
def _running(*args: str) -> Iterator[tuple[str, Finished]]:
    port = free_port()
    if "--apns-port" not in args:
        args = (*args, "--apns-port", str(free_port()))
    process = subprocess.Popen(
        [PIPPIN, "sim", "apple", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    base_url = f"http://127.0.0.1:{port}"
    finished, output = Finished(), ""
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"pippin sim apple exited early: {process.stdout.read() if process.stdout else ''}"
                )
            try:
                if httpx.get(f"{base_url}/portal/terms", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("pippin sim apple did not answer within 30 s")
            time.sleep(0.1)
        yield base_url, finished
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            output = process.stdout.read()
            process.stdout.close()
    finished.returncode, finished.output = process.returncode, output


def test_serves_seeds_devices_and_keeps_state_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "sim"
    with _running("--data", str(data), "--devices", "25", "--seed", "7") as (base_url, process):
        devices = httpx.get(f"{base_url}/portal/devices", params={"limit": 1000}).json()
        assert devices["total"] == 25
        first_serials = sorted(device["serial_number"] for device in devices["devices"])
        assert httpx.get(f"{base_url}/portal/").status_code == 200
        assert httpx.post(f"{base_url}/portal/terms").json() == {"terms_pending": True}
    output = process.output
    assert f"{base_url}/portal/" in output and "DEP base URL" in output and "Created 25 unassigned devices" in output
    assert process.returncode == 0

    with _running("--data", str(data), "--devices", "10") as (base_url, process):
        devices = httpx.get(f"{base_url}/portal/devices", params={"limit": 1000}).json()
        assert sorted(device["serial_number"] for device in devices["devices"]) == first_serials
        assert httpx.get(f"{base_url}/portal/terms").json() == {"terms_pending": True}
    assert "ignored" in process.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "0"], "is not a TCP port"),
        (["--port", "70000"], "is not a TCP port"),
        (["--apns-port", "-1"], "is not a TCP port of its own"),
        (["--apns-port", "70000"], "is not a TCP port of its own"),
        (["--port", "8081", "--apns-port", "8081"], "is not a TCP port of its own"),
        (["--apns-push-ca", "/nonexistent/ca.pem"], "is not a file"),
        (["--devices", "-1"], "out of range"),
        (["--devices", "1000001"], "out of range"),
    ],
)
def test_bad_flags_are_refused_with_exit_code_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["sim", "apple", "--data", str(tmp_path / "sim"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "sim").exists()


def test_a_file_as_data_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    result = CliRunner().invoke(app, ["sim", "apple", "--data", str(path)])
    assert result.exit_code == 2 and "is a file" in result.output


def test_serves_apns_with_the_push_ca_it_is_given_and_prints_where(tmp_path: Path) -> None:
    ca = PushCA.create()
    push = ca.issue()
    ca_file = tmp_path / "push-ca.pem"
    ca_file.write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    apns_port = free_port()
    data = tmp_path / "sim"
    with _running("--data", str(data), "--apns-port", str(apns_port), "--apns-push-ca", str(ca_file)) as (
        base_url,
        process,
    ):
        token = httpx.post(f"{base_url}/apns/tokens", json={"topic": push.topic}).json()["token"]
        tls_ca = tmp_path / "tls-ca.pem"
        tls_ca.write_bytes(httpx.get(f"{base_url}/apns/ca.pem").content)
        context = client_context(tls_ca, push, tmp_path)
        with APNsTestClient(f"https://localhost:{apns_port}", context) as provider:
            assert provider.push(token, {"mdm": "hello"}, apns_expiration="4102444800").status_code == 200
        delivered = httpx.get(f"{base_url}/apns/tokens/{token}/next", params={"timeout": "0"})
        assert delivered.json() == {"mdm": "hello"}
    assert f"https://127.0.0.1:{apns_port}" in process.output and "apns-tls-ca.pem" in process.output
    assert process.returncode == 0


def test_apns_port_zero_serves_no_apns(tmp_path: Path) -> None:
    with _running("--data", str(tmp_path / "sim"), "--apns-port", "0") as (_base_url, process):
        pass
    assert "APNs provider API" not in process.output and process.returncode == 0


def test_a_taken_apns_port_is_refused_with_exit_code_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["sim", "apple", "--data", str(tmp_path / "sim"), "--apns-port", str(port)])
    assert result.exit_code == 2 and "cannot serve APNs" in result.output
