"""The webhook settings: defaults, accepted forms, bad values refused at start naming the variable (never echoing
the value), and the jobs `pippin serve` runs for them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from pippin.cli.main import app
from pippin.config import EXAMPLES, InvalidSettings, Settings, load_settings
from pippin.crypto.secrets import SecretBox
from pippin.mdm.webhook_jobs import webhook_jobs
from pippin.store.db import SessionFactory

SECRET = "0123456789abcdef-secret"


def test_webhooks_are_off_by_default() -> None:
    settings = load_settings({})
    assert (settings.webhook_url, settings.webhook_secret, settings.webhook_timeout) == (None, None, 10.0)
    assert (settings.webhook_max_age, settings.webhook_keep_finished) == (timedelta(days=3), timedelta(days=1))
    assert all(name in EXAMPLES for name in Settings.model_fields if name.startswith("webhook_"))


def test_the_settings_are_read() -> None:
    settings = load_settings(
        {
            "PIPPIN_WEBHOOK_URL": " https://hooks.example.com/mdm ",
            "PIPPIN_WEBHOOK_SECRET": SECRET,
            "PIPPIN_WEBHOOK_TIMEOUT": "2.5",
            "PIPPIN_WEBHOOK_MAX_AGE": "P1D",
            "PIPPIN_WEBHOOK_KEEP_FINISHED": "600",
        }
    )
    assert settings.webhook_url == "https://hooks.example.com/mdm"
    assert settings.webhook_secret is not None and settings.webhook_secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings)
    assert (settings.webhook_timeout, settings.webhook_max_age) == (2.5, timedelta(days=1))
    assert settings.webhook_keep_finished == timedelta(minutes=10)
    assert load_settings({"PIPPIN_WEBHOOK_URL": "", "PIPPIN_WEBHOOK_SECRET": " "}).webhook_url is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PIPPIN_WEBHOOK_URL", "hooks.example.com/mdm"),
        ("PIPPIN_WEBHOOK_URL", "ftp://hooks.example.com/"),
        ("PIPPIN_WEBHOOK_URL", "https://"),
        ("PIPPIN_WEBHOOK_URL", "https://hooks.example.com:port/"),
        ("PIPPIN_WEBHOOK_URL", "https://user:hunter2-password@hooks.example.com:99999999/"),
        ("PIPPIN_WEBHOOK_URL", "https://hooks.example.com/\x1b[2J"),
        ("PIPPIN_WEBHOOK_SECRET", "short-hunter2"),
        ("PIPPIN_WEBHOOK_SECRET", "hunter2-with-a-newline\n-in-it"),
        ("PIPPIN_WEBHOOK_TIMEOUT", "0"),
        ("PIPPIN_WEBHOOK_TIMEOUT", "1000"),
        ("PIPPIN_WEBHOOK_MAX_AGE", "0"),
        ("PIPPIN_WEBHOOK_MAX_AGE", "soon"),
        ("PIPPIN_WEBHOOK_KEEP_FINISHED", "-5"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_not_the_value(variable: str, value: str) -> None:
    with pytest.raises(InvalidSettings) as refused:
        load_settings({variable: value})
    assert variable in refused.value.message
    assert "hunter2" not in str(refused.value)


def test_a_malformed_url_stops_the_cli_at_start_with_exit_code_2(settings: Settings) -> None:
    env = {
        "PIPPIN_DATA_DIR": str(settings.data_dir),
        "PIPPIN_DATABASE_URL": str(settings.database_url),
        "PIPPIN_WEBHOOK_URL": "hooks.example.com/hunter2",
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(app, ["serve"], env=env)
    assert result.exit_code == 2, result.output
    assert "PIPPIN_WEBHOOK_URL" in result.output and "hunter2" not in result.output
    assert "Traceback" not in result.output


def test_without_a_url_only_pruning_runs(session_factory: SessionFactory, settings: Settings) -> None:
    box = SecretBox.from_settings(settings)
    assert [job.name for job in webhook_jobs(session_factory, settings=settings, box=box)] == [
        "webhooks.prune_finished"
    ]
    hooked = settings.model_copy(update={"webhook_url": "https://hooks.example.com/mdm"})
    jobs = webhook_jobs(session_factory, settings=hooked, box=box)
    assert [job.name for job in jobs] == ["webhooks.deliver_due", "webhooks.prune_finished"]
    assert jobs[0].interval == timedelta(seconds=2)
