"""The push settings: defaults, accepted forms, and bad values refused at start naming the variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pippin.config import EXAMPLES, InvalidSettings, Settings, load_settings


def test_the_defaults_are_apples_production_apns_and_a_weeks_expiration() -> None:
    settings = load_settings({})
    assert settings.apns_base_url == "https://api.push.apple.com"
    assert settings.apns_ca_file is None
    assert (settings.apns_timeout, settings.apns_max_in_flight) == (10.0, 20)
    assert settings.push_expiration == timedelta(days=7)
    assert settings.push_silent_after == timedelta(days=1)
    assert settings.push_max_attempts == 12


def test_every_push_setting_has_an_example() -> None:
    fields = [name for name in Settings.model_fields if name.startswith(("apns_", "push_"))]
    assert len(fields) == 7
    assert all(name in EXAMPLES for name in fields)


def test_durations_and_a_ca_file_are_read(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    settings = load_settings(
        {
            "PIPPIN_PUSH_EXPIRATION": "P3D",
            "PIPPIN_PUSH_SILENT_AFTER": "3600",
            "PIPPIN_APNS_CA_FILE": str(ca),
            "PIPPIN_APNS_BASE_URL": "https://127.0.0.1:2197",
        }
    )
    assert (settings.push_expiration, settings.push_silent_after) == (timedelta(days=3), timedelta(hours=1))
    assert settings.apns_ca_file == ca
    assert load_settings({"PIPPIN_APNS_CA_FILE": ""}).apns_ca_file is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PIPPIN_APNS_BASE_URL", "api.push.apple.com"),
        ("PIPPIN_APNS_BASE_URL", "ftp://api.push.apple.com"),
        ("PIPPIN_APNS_TIMEOUT", "0"),
        ("PIPPIN_APNS_TIMEOUT", "ten"),
        ("PIPPIN_APNS_MAX_IN_FLIGHT", "0"),
        ("PIPPIN_APNS_MAX_IN_FLIGHT", "100000"),
        ("PIPPIN_PUSH_EXPIRATION", "0"),
        ("PIPPIN_PUSH_EXPIRATION", "P60D"),
        ("PIPPIN_PUSH_EXPIRATION", "soon"),
        ("PIPPIN_PUSH_MAX_ATTEMPTS", "0"),
        ("PIPPIN_PUSH_SILENT_AFTER", "-5"),
        ("PIPPIN_APNS_CA_FILE", "/nonexistent/ca.pem"),
    ],
)
def test_a_bad_value_names_the_variable_and_an_example(variable: str, value: str) -> None:
    with pytest.raises(InvalidSettings) as caught:
        load_settings({variable: value})
    [problem] = caught.value.problems
    assert problem.startswith(variable + ":")
    assert f"for example {variable}=" in problem


def test_a_ca_file_without_a_certificate_or_a_folder_is_refused(tmp_path: Path) -> None:
    not_pem = tmp_path / "key.txt"
    not_pem.write_text("not a certificate")
    for path in (not_pem, tmp_path):
        with pytest.raises(InvalidSettings) as caught:
            load_settings({"PIPPIN_APNS_CA_FILE": str(path)})
        assert caught.value.problems[0].startswith("PIPPIN_APNS_CA_FILE:")
