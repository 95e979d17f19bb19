"""`pippin sim devices` as a user runs it: devices switched on against a simulator, a summary, clear refusals."""

from __future__ import annotations

import plistlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pippin.cli.main import app
from pippin.sim.iphone.device_state import StateDirectory
from tests.sim.iphone.mdm_server import MDMServer, device_assigned_to, run_mdm_server
from tests.sim.portal_client import create_devices
from tests.simulator import RunningSimulator


@pytest.fixture
def mdm() -> Iterator[MDMServer]:
    with run_mdm_server(MDMServer()) as running:
        yield running


def test_devices_given_by_serial_enroll_and_a_summary_is_printed(
    sim: RunningSimulator, mdm: MDMServer, tmp_path: Path
) -> None:
    states = tmp_path / "devices"
    serial = device_assigned_to(sim, mdm, StateDirectory(states))
    args = ["sim", "devices", "--sim-url", sim.base_url, "--serial", serial, "--state-dir", str(states)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{serial}: enrolled" in result.output and "1 of 1 devices enrolled, 0 failed." in result.output
    assert mdm.message_types() == ["Authenticate", "TokenUpdate", "Idle"]
    again = CliRunner().invoke(app, args)  # switched on again: still enrolled, it only connects
    assert again.exit_code == 0 and f"{serial}: already enrolled" in again.output
    assert mdm.message_types() == ["Authenticate", "TokenUpdate", "Idle", "Idle"]


def test_count_takes_the_devices_with_a_profile_and_a_failure_exits_non_zero(
    sim: RunningSimulator, mdm: MDMServer, tmp_path: Path
) -> None:
    states = tmp_path / "devices"
    first = device_assigned_to(sim, mdm, StateDirectory(states))
    second = device_assigned_to(sim, mdm, StateDirectory(states))
    mdm.unrecognized = True
    create_devices(sim.portal, 3)  # no profile: not taken
    result = CliRunner().invoke(
        app, ["sim", "devices", "--sim-url", sim.base_url, "--count", "2", "--state-dir", str(states)]
    )
    assert result.exit_code == 1, result.output
    assert "0 of 2 devices enrolled, 2 failed." in result.output
    assert "2 x enrollment: the MDM server does not recognise this device" in result.output
    assert f"{first}: FAILED at enrollment" in result.output and f"{second}: FAILED" in result.output
    assert "Traceback" not in result.output
    too_many = CliRunner().invoke(app, ["sim", "devices", "--sim-url", sim.base_url, "--count", "3"])
    assert too_many.exit_code == 2 and "fewer than --count 3" in too_many.output


def test_a_device_the_factory_did_not_make_fails_clearly(sim: RunningSimulator) -> None:
    result = CliRunner().invoke(app, ["sim", "devices", "--sim-url", sim.base_url, "--serial", "NOSUCHDEVICE1"])
    assert result.exit_code == 1
    assert "NOSUCHDEVICE1: FAILED at factory" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sim-url", "http://127.0.0.1:1"], "either --serial"),
        (["--sim-url", "http://127.0.0.1:1", "--serial", "A1", "--count", "2"], "either --serial"),
        (["--sim-url", "ftp://example.com", "--serial", "A1"], "not an http(s) URL"),
        (["--sim-url", "http://[::1", "--serial", "A1"], "not an http(s) URL"),
        (["--sim-url", "http://127.0.0.1:1", "--count", "0"], "out of range"),
        (["--sim-url", "http://127.0.0.1:1", "--serial", "A 1"], "not a serial number"),
        (["--sim-url", "http://127.0.0.1:1", "--serial", "A1", "--concurrency", "0"], "--concurrency"),
        (["--sim-url", "http://127.0.0.1:1", "--serial", "A1", "--user", "ann"], "--user and --password"),
        (["--sim-url", "http://127.0.0.1:1", "--serial", "A1", "--trust-ca", "/nonexistent.pem"], "cannot read"),
        (["--sim-url", "http://127.0.0.1:1", "--count", "1"], "cannot list the simulator's devices"),
        (["--sim-url", "http://127.0.0.1:1", "--serial", "A1", "--not-now-rate", "1.5"], "--not-now-rate 1.5 is out"),
        (["--sim-url", "http://127.0.0.1:1", "--serial", "A1", "--error-rate", "-0.1"], "--error-rate -0.1 is out"),
        (["--sim-url", "http://127.0.0.1:1", "--serial", "A1", "--error-rate", "nan"], "--error-rate nan is out"),
        (["--sim-url", "http://127.0.0.1:1", "--serial", "A1", "--seed", "-1"], "--seed -1 is out"),
    ],
)
def test_bad_flags_are_refused_clearly(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["sim", "devices", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_trust_file_without_certificates_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trust.pem"
    path.write_text("not a certificate")
    result = CliRunner().invoke(
        app, ["sim", "devices", "--sim-url", "http://127.0.0.1:1", "--serial", "A1", "--trust-ca", str(path)]
    )
    assert result.exit_code == 2 and "holds no PEM certificate" in result.output


def test_the_rates_reach_the_devices(sim: RunningSimulator, mdm: MDMServer, tmp_path: Path) -> None:
    states = tmp_path / "devices"
    serial = device_assigned_to(sim, mdm, StateDirectory(states))
    mdm.commands = [plistlib.dumps({"CommandUUID": "C-1", "Command": {"RequestType": "DeviceLock"}})]
    args = ["sim", "devices", "--sim-url", sim.base_url, "--serial", serial, "--state-dir", str(states)]
    result = CliRunner().invoke(app, [*args, "--not-now-rate", "1", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert f"{serial}: answered DeviceLock: NotNow" in result.output
    assert mdm.message_types() == ["Authenticate", "TokenUpdate", "Idle", "NotNow", "Idle"]
