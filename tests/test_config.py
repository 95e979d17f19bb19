"""Settings read from PIPPIN_* environment variables, as the README documents them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from pippin.config import Settings


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
def test_durations_take_seconds_or_iso_8601(monkeypatch: pytest.MonkeyPatch, raw: str, expected: timedelta) -> None:
    monkeypatch.setenv("PIPPIN_DEP_SYNC_WINDOW", raw)
    assert Settings().dep_sync_window == expected


@pytest.mark.parametrize("raw", ["abc", "-5", "0", "PT0S", ""])
def test_nonsense_or_empty_durations_are_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("PIPPIN_DEP_SYNC_WINDOW", raw)
    with pytest.raises(ValidationError, match="dep_sync_window"):
        Settings()


def test_unknown_log_format_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPPIN_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="PIPPIN_LOG_FORMAT"):
        Settings()
