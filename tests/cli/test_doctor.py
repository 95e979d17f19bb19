"""`pippin doctor`: the settings in force with secrets masked, and each dependency checked without changing it.

Run on SQLite and PostgreSQL, like the CLI's other tests, and with a database, an Apple and a
master key that each fail in turn: one clear line and the documented exit code, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner, Result

from pippin.cli.doctor import key_fingerprint
from pippin.cli.main import app
from pippin.crypto.secrets import parse_master_key
from tests.simulator import RunningSimulator

Run = Callable[..., Result]


@pytest.fixture
def secret_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def doctor(tmp_path: Path, database_url: str, secret_key: str, sim: RunningSimulator) -> Run:
    base = {
        "PIPPIN_DATA_DIR": str(tmp_path / "data"),
        "PIPPIN_DATABASE_URL": database_url,
        "PIPPIN_SECRET_KEY": secret_key,
        "PIPPIN_DEP_BASE_URL": sim.base_url,
        "COLUMNS": "250",
    }

    def run(*args: str, **env: str | None) -> Result:
        return CliRunner().invoke(app, ["doctor", *args], env={**base, **env})

    return run


def test_everything_answers_and_no_secret_is_shown(doctor: Run, secret_key: str) -> None:
    result = doctor()
    assert result.exit_code == 0, result.output
    assert "PIPPIN_SECRET_KEY" in result.output and "set (hidden)" in result.output
    assert secret_key not in result.output
    assert key_fingerprint(parse_master_key(secret_key, source="test")) in result.output
    assert "(newest)" in result.output and "reachable (HTTP" in result.output
    assert "not Apple's own service" in result.output
    assert "Traceback" not in result.output


def test_json_names_every_setting_and_where_it_came_from(doctor: Run, secret_key: str) -> None:
    result = doctor("--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["settings"]["PIPPIN_SECRET_KEY"] == {"value": "set (hidden)", "source": "environment"}
    assert report["settings"]["PIPPIN_LOG_LEVEL"]["source"] == "default"
    assert {check["name"]: check["status"] for check in report["checks"]} == {
        "data directory": "warning",
        "database": "ok",
        "master key": "ok",
        "master key in database": "warning",
        "Apple DEP": "ok",
        "device trust anchors": "warning",
    }


def test_an_unreachable_database_is_one_line_and_exit_5(doctor: Run) -> None:
    result = doctor(PIPPIN_DATABASE_URL="postgres://pippin:hunter2@127.0.0.1:1/pippin")
    assert result.exit_code == 5, result.output
    assert "unreachable" in result.output and "postgresql+psycopg://pippin:***@127.0.0.1:1/pippin" in result.output
    assert "hunter2" not in result.output and "Traceback" not in result.output


def test_an_unreachable_apple_exits_5(doctor: Run) -> None:
    result = doctor(PIPPIN_DEP_BASE_URL="http://127.0.0.1:9")
    assert result.exit_code == 5 and "Apple DEP" in result.output and "unreachable" in result.output


def test_a_master_key_file_others_can_read_exits_1(doctor: Run, tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "master.key"
    key_file.parent.mkdir()
    key_file.write_text(Fernet.generate_key().decode())
    key_file.chmod(0o644)
    result = doctor(PIPPIN_SECRET_KEY=None)
    assert result.exit_code == 1 and "can be read by other users" in result.output


def test_a_malformed_master_key_is_named_but_never_shown(doctor: Run) -> None:
    result = doctor(PIPPIN_SECRET_KEY="not-a-key-but-maybe-a-password")
    assert result.exit_code == 1 and "PIPPIN_SECRET_KEY" in result.output
    assert "maybe-a-password" not in result.output


def test_doctor_creates_nothing(tmp_path: Path, sim: RunningSimulator) -> None:
    data_dir = tmp_path / "fresh"
    env = {"PIPPIN_DATA_DIR": str(data_dir), "PIPPIN_DEP_BASE_URL": sim.base_url, "PIPPIN_DATABASE_URL": None}
    env["COLUMNS"] = "250"
    result = CliRunner().invoke(app, ["doctor"], env=env)
    assert result.exit_code == 0, result.output
    assert "does not exist yet" in result.output and "not created yet" in result.output
    assert not data_dir.exists()


def test_an_unknown_variable_is_warned_about_at_start_naming_the_closest(doctor: Run) -> None:
    result = doctor(PIPPIN_DEP_BASEURL="http://127.0.0.1:9", PIPPIN_REQUIRE_POSTGRES="1")
    assert "unknown PIPPIN_* variable ignored variable=PIPPIN_DEP_BASEURL did_you_mean=PIPPIN_DEP_BASE_URL" in (
        result.output
    )
    assert "PIPPIN_REQUIRE_POSTGRES" not in result.output
    assert "PIPPIN_DEP_BASEURL is ignored; did you mean PIPPIN_DEP_BASE_URL?" in result.output


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PIPPIN_DEP_SYNC_WINDOW", "ten minutes"), ("PIPPIN_TRUSTED_PROXIES", "10.0.0.1/8"), ("PIPPIN_LOG_LEVEL", "LOUD")],
)
def test_a_bad_setting_exits_2_naming_the_variable_and_an_example(doctor: Run, variable: str, value: str) -> None:
    result = CliRunner().invoke(app, ["version"], env={variable: value})
    assert result.exit_code == 2
    assert f"{variable}:" in result.output and f"for example {variable}=" in result.output
    assert "Traceback" not in result.output


def test_device_trust_anchors_are_checked_when_set_and_warned_about_when_not(
    doctor: Run, tmp_path: Path, sim: RunningSimulator
) -> None:
    unset = doctor("--json")
    assert unset.exit_code == 0, unset.output
    checks = {check["name"]: check for check in json.loads(unset.stdout)["checks"]}
    assert checks["device trust anchors"]["status"] == "warning"
    assert "PIPPIN_DEVICE_TRUST_ANCHORS_FILE" in checks["device trust anchors"]["detail"]

    bundle = tmp_path / "device-cas.pem"
    bundle.write_text(httpx.get(f"{sim.base_url}/factory/device-ca.pem").text)
    good = doctor(PIPPIN_DEVICE_TRUST_ANCHORS_FILE=str(bundle))
    assert good.exit_code == 0, good.output
    assert "3 certificates" in good.output and "iPhone Device CA" in good.output

    for content in ("not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
        bundle.write_text(content)
        bad = doctor(PIPPIN_DEVICE_TRUST_ANCHORS_FILE=str(bundle))
        assert bad.exit_code == 1 and "ADE enrollment is refused" in bad.output, bad.output
        assert "Traceback" not in bad.output
    missing = doctor(PIPPIN_DEVICE_TRUST_ANCHORS_FILE=str(tmp_path / "absent.pem"))
    assert missing.exit_code == 1 and "cannot be read" in missing.output, missing.output
