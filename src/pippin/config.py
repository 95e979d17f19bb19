"""Pippin's settings, read once from ``PIPPIN_*`` environment variables and passed down.

Nothing in the package reads the environment itself: the CLI's root callback and the API's app factory
build one :class:`Settings` and hand it to whatever needs it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting Pippin knows, with the embedded defaults (SQLite, Apple's real DEP service)."""

    model_config = SettingsConfigDict(env_prefix="PIPPIN_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./var"),
        description="Where the SQLite database and the master key file live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the database; unset means SQLite at DATA_DIR/pippin.db. "
        "Use postgresql+psycopg://... to run several Pippin processes on one database.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Master key (url-safe base64 of 32 bytes) that encrypts secrets at rest; "
        "unset means a key file created with mode 0600 in DATA_DIR.",
    )
    dep_base_url: str = Field(
        default="https://mdmenrollment.apple.com",
        description="Apple's DEP service; point it at `pippin sim apple` for tests and demos.",
    )
    dep_timeout: float = Field(default=30.0, gt=0, description="Seconds one DEP request may take.")
    dep_max_retries: int = Field(
        default=5,
        ge=0,
        le=20,
        description="Retries of one DEP request after 429, 5xx or a dropped connection.",
    )
    dep_sync_interval: timedelta = Field(
        default=timedelta(minutes=30),
        description="How often `pippin serve` runs an incremental sync for each token in good standing.",
    )
    dep_full_sync_interval: timedelta = Field(
        default=timedelta(days=7),
        description="A full sync refreshes every serial at most this often; one asked for sooner only adds "
        "serials not yet known (the seed's 7-day rule).",
    )
    dep_sync_window: timedelta = Field(
        default=timedelta(minutes=10),
        description="Time each sync is given; Sync stays disabled until it ends or the sync finishes.",
    )
    server_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Pippin's address as devices reach it; enrollment profiles send devices to "
        "SERVER_URL/mdm/enroll/REF (and, with user affinity, SERVER_URL/enroll/web/REF), REF naming the profile "
        "and revision.",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: str = Field(default="text", description="`text` for people, `json` for log collectors.")

    @field_validator("dep_sync_interval", "dep_full_sync_interval", "dep_sync_window", mode="before")
    @classmethod
    def _seconds_or_iso_duration(cls, value: object) -> object:
        """Durations from the environment: plain seconds (``1800``) or ISO 8601 (``PT30M``)."""
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return timedelta(seconds=float(value))
        return value

    @field_validator("dep_sync_interval", "dep_full_sync_interval", "dep_sync_window")
    @classmethod
    def _positive_duration(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError("PIPPIN_LOG_FORMAT must be `text` or `json`")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("PIPPIN_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        return upper

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one, or SQLite inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pippin.db').resolve()}"
