"""Settings read from PIPPIN_* environment variables, as the README documents them."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from pippin.config import (
    InvalidSettings,
    Settings,
    default_data_dir,
    known_variables,
    load_settings,
    unknown_variables,
)
from pippin.store.db import create_db_engine


def test_defaults_are_the_seeds_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PIPPIN_DEP_SYNC_INTERVAL", "PIPPIN_DEP_FULL_SYNC_INTERVAL", "PIPPIN_DEP_SYNC_WINDOW"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.dep_full_sync_interval == timedelta(days=7)
    assert settings.dep_sync_window == timedelta(minutes=10)
    assert settings.dep_sync_interval == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1800", timedelta(minutes=30)), ("PT30M", timedelta(minutes=30)), ("2.5", timedelta(seconds=2.5))],
)
def test_durations_take_seconds_or_iso_8601(raw: str, expected: timedelta) -> None:
    assert load_settings({"PIPPIN_DEP_SYNC_WINDOW": raw}).dep_sync_window == expected


@pytest.mark.parametrize("raw", ["abc", "-5", "0", "PT0S", "", "1e9999", "P99999999999D"])
def test_a_bad_duration_names_the_variable_and_gives_an_example(raw: str) -> None:
    with pytest.raises(InvalidSettings) as caught:
        load_settings({"PIPPIN_DEP_SYNC_WINDOW": raw})
    message = caught.value.message
    assert "PIPPIN_DEP_SYNC_WINDOW" in message and "PIPPIN_DEP_SYNC_WINDOW=PT10M" in message
    assert "dep_sync_window" not in message


def test_every_problem_is_named_at_once_and_exits_as_bad_input() -> None:
    with pytest.raises(InvalidSettings) as caught:
        load_settings({"PIPPIN_LOG_FORMAT": "xml", "PIPPIN_DEP_TIMEOUT": "-1", "PIPPIN_DEP_MAX_RETRIES": "x"})
    assert [problem.split(":")[0] for problem in caught.value.problems] == [
        "PIPPIN_DEP_TIMEOUT",
        "PIPPIN_DEP_MAX_RETRIES",
        "PIPPIN_LOG_FORMAT",
    ]
    assert "PIPPIN_LOG_FORMAT=json" in caught.value.message
    assert caught.value.code == "invalid_settings"


def test_a_bad_value_is_never_repeated_in_the_error() -> None:
    with pytest.raises(InvalidSettings) as caught:
        load_settings({"PIPPIN_DEP_TIMEOUT": "hunter2-secret", "PIPPIN_DEP_MAX_RETRIES": "pa55word"})
    assert "hunter2" not in str(caught.value) and "pa55word" not in str(caught.value)


def test_settings_built_directly_still_validate() -> None:
    with pytest.raises(ValidationError, match="dep_sync_window"):
        Settings(dep_sync_window=timedelta(0))


@pytest.mark.parametrize(
    "url",
    ["postgres://pippin:pw@db.example.com:5432/pippin", "postgresql://pippin:pw@db.example.com:5432/pippin"],
)
def test_the_common_postgresql_url_forms_are_accepted(url: str) -> None:
    settings = load_settings({"PIPPIN_DATABASE_URL": url})
    assert settings.resolved_database_url == "postgresql+psycopg://pippin:pw@db.example.com:5432/pippin"
    engine = create_db_engine(settings.resolved_database_url)  # no connection is made until one is needed
    assert engine.dialect.name == "postgresql"
    engine.dispose()


def test_an_explicit_driver_and_sqlite_urls_are_left_as_they_are(tmp_path: Path) -> None:
    assert (
        load_settings({"PIPPIN_DATABASE_URL": "postgresql+psycopg://a@b/c"}).database_url
        == "postgresql+psycopg://a@b/c"
    )
    sqlite = f"sqlite:///{tmp_path}/x.db"
    assert load_settings({"PIPPIN_DATABASE_URL": sqlite}).resolved_database_url == sqlite
    assert load_settings({"PIPPIN_DATABASE_URL": "  "}).database_url is None


def test_the_default_data_dir_does_not_depend_on_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    first = load_settings({}).data_dir
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert load_settings({}).data_dir == first == Path.home() / ".local" / "share" / "pippin"
    assert first.is_absolute()


def test_the_data_dir_follows_xdg_data_home_when_it_is_absolute(tmp_path: Path) -> None:
    assert default_data_dir({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "pippin"
    assert default_data_dir({"XDG_DATA_HOME": "relative/share"}) == Path.home() / ".local" / "share" / "pippin"


def test_a_relative_data_dir_is_fixed_to_an_absolute_path_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings({"PIPPIN_DATA_DIR": "var"}).data_dir == tmp_path / "var"
    with pytest.raises(InvalidSettings, match="PIPPIN_DATA_DIR"):
        load_settings({"PIPPIN_DATA_DIR": "var\x00evil"})


def test_trusted_proxies_take_addresses_and_networks() -> None:
    settings = load_settings({"PIPPIN_TRUSTED_PROXIES": " 10.0.0.5, 10.1.0.0/16 ,, ::1 "})
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.5/32"),
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("::1/128"),
    )
    assert load_settings({}).trusted_proxies == ()


@pytest.mark.parametrize("raw", ["*", "10.0.0.300", "10.0.0.1/8", "proxy.example.com", "10.0.0.0/33", "[::1]"])
def test_malformed_trusted_proxies_are_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(InvalidSettings) as caught:
        load_settings({"PIPPIN_TRUSTED_PROXIES": f"10.0.0.5,{raw}"})
    assert "PIPPIN_TRUSTED_PROXIES" in caught.value.message and "10.1.0.0/16" in caught.value.message


def test_a_typo_in_a_variable_is_found_with_the_closest_setting() -> None:
    environ = {
        "PIPPIN_DEP_BASEURL": "http://127.0.0.1:9",
        "PIPPIN_DATA_DIR": "/srv/pippin",
        "PIPPIN_FROBNICATE": "1",
        "HOME": "/root",
    }
    assert unknown_variables(environ) == [("PIPPIN_DEP_BASEURL", "PIPPIN_DEP_BASE_URL"), ("PIPPIN_FROBNICATE", None)]


def test_the_test_suites_own_variables_are_not_called_unknown() -> None:
    environ = {
        "PIPPIN_REQUIRE_POSTGRES": "1",
        "PIPPIN_REQUIRE_BROWSER": "1",
        "PIPPIN_TEST_POSTGRES_URL": "postgresql://x",
        "PIPPIN_SLOW_TESTS": "1",
    }
    assert unknown_variables(environ) == []
    assert unknown_variables({name: "x" for name in known_variables()}) == []


@pytest.mark.parametrize(
    "url", ["::::", "postgresql://u:p@[::1", "mysql://pippin@db/pippin", "mongodb://x", "not a url at all"]
)
def test_a_database_url_pippin_cannot_use_is_a_settings_error(url: str) -> None:
    with pytest.raises(InvalidSettings) as caught:
        load_settings({"PIPPIN_DATABASE_URL": url})
    assert "PIPPIN_DATABASE_URL" in caught.value.message and "for example PIPPIN_DATABASE_URL=postgresql://" in (
        caught.value.message
    )


@pytest.mark.parametrize("variable", ["PIPPIN_DEP_BASE_URL", "PIPPIN_SERVER_URL"])
@pytest.mark.parametrize(
    "url",
    ["mdmenrollment.apple.com", "file:///etc/passwd", "https://", "http://host:port/", "https://a\x1b.b", "ftp://x"],
)
def test_web_addresses_must_be_http_or_https_with_a_host(variable: str, url: str) -> None:
    with pytest.raises(InvalidSettings) as caught:
        load_settings({variable: url})
    assert f"{variable}: must be an http:// or https:// address" in caught.value.message
    assert load_settings({variable: " https://mdm.example.com:8443/ "}).model_dump()[variable[7:].lower()] == (
        "https://mdm.example.com:8443/"
    )


def test_an_empty_data_dir_means_the_default_and_a_file_is_refused(tmp_path: Path) -> None:
    assert load_settings({"PIPPIN_DATA_DIR": " "}).data_dir == default_data_dir()
    a_file = tmp_path / "pippin.db"
    a_file.write_text("")
    with pytest.raises(InvalidSettings, match="PIPPIN_DATA_DIR: names a file, not a folder"):
        load_settings({"PIPPIN_DATA_DIR": str(a_file)})
