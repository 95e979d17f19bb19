"""Pippin's settings, read once from ``PIPPIN_*`` environment variables and passed down.

Nothing in the package reads the environment itself: the CLI's root callback and the API's app factory
build one :class:`Settings` (through :func:`load_settings`, which turns a bad value into an error naming the
variable and an example) and hand it to whatever needs it. A ``PIPPIN_*`` variable that is no setting is most
likely a typo (``PIPPIN_DEP_BASEURL`` would leave Pippin talking to the real Apple), so
:func:`unknown_variables` finds them, with the closest setting, for the CLI to warn about at start.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from pippin.errors import InvalidInput

ENV_PREFIX = "PIPPIN_"
#: Prefixes reserved for Pippin's own test suite and CI (``PIPPIN_TEST_POSTGRES_URL``, ``PIPPIN_REQUIRE_POSTGRES``,
#: ``PIPPIN_SLOW_TESTS``): never settings of the product, so never warned about.
RESERVED_PREFIXES = ("PIPPIN_TEST_", "PIPPIN_REQUIRE_", "PIPPIN_SLOW_")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user data directory: ``$XDG_DATA_HOME/pippin``, else ``~/.local/share/pippin``.

    Absolute whatever the current folder is, so every command run by the same user finds the same database;
    a relative ``XDG_DATA_HOME`` is ignored, as the XDG specification says.
    """
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "pippin"


def _parse_duration_seconds(value: object) -> object:
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        return timedelta(seconds=float(value))
    return value


_DURATIONS = (
    "dep_sync_interval",
    "dep_full_sync_interval",
    "dep_sync_window",
    "push_expiration",
    "push_silent_after",
    "enrollment_challenge_ttl",
    "command_expiration",
    "command_retention",
    "setup_stuck_after",
    "webhook_max_age",
    "webhook_keep_finished",
)
#: The shortest webhook secret accepted: an HMAC key guessable by brute force would sign nothing.
MIN_WEBHOOK_SECRET_CHARS = 16
#: The longest ``apns-expiration`` Pippin asks for.
MAX_PUSH_EXPIRATION = timedelta(days=30)


class Settings(BaseSettings):
    """Every setting Pippin knows, with the embedded defaults (SQLite, Apple's real DEP service)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the SQLite database and the master key file live; a relative path is taken from the "
        "folder Pippin starts in.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the database; unset means SQLite at DATA_DIR/pippin.db. "
        "Use postgresql://... (or postgres://...) to run several Pippin processes on one database.",
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
    apns_base_url: str = Field(
        default="https://api.push.apple.com",
        description="Apple's push service (APNs) for MDM pushes; point it at `pippin sim apple`'s APNs port for "
        "tests and demos.",
    )
    apns_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the certificate authorities trusted for APNs's TLS certificate (the simulator's "
        "CA); unset means the system's trust store, else certifi's.",
    )
    apns_timeout: float = Field(default=10.0, gt=0, le=300, description="Seconds one push to APNs may take.")
    apns_max_in_flight: int = Field(
        default=20, ge=1, le=1000, description="Pushes sent at once over the HTTP/2 connection to APNs."
    )
    push_expiration: timedelta = Field(
        default=timedelta(days=7),
        description="How long APNs keeps a push for a device that is offline (`apns-expiration`), and how long "
        "Pippin retries a push APNs did not accept.",
    )
    push_max_attempts: int = Field(
        default=12, ge=1, le=100, description="Attempts of one push (429, 5xx, dropped connections) before giving up."
    )
    push_silent_after: timedelta = Field(
        default=timedelta(days=1),
        description="An enrolled device that has not checked in for this long is pushed again, once per period.",
    )
    command_expiration: timedelta = Field(
        default=timedelta(days=30),
        description="How long a queued command waits for the device to answer it before it is expired.",
    )
    command_retention: timedelta = Field(
        default=timedelta(days=30),
        description="How long a finished command (answered, expired or canceled) is kept, with its answer, "
        "before it is pruned.",
    )
    setup_stuck_after: timedelta = Field(
        default=timedelta(minutes=30),
        description="A device still waiting in Setup Assistant for DeviceConfigured this long after its TokenUpdate "
        "is shown as a problem, with the step it waits on.",
    )
    scep_certificate_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description="Days a device identity certificate issued over SCEP is valid; devices renew it before then.",
    )
    enrollment_challenge_ttl: timedelta = Field(
        default=timedelta(hours=1),
        description="How long the one-time SCEP challenge in an enrollment profile stays usable after the "
        "profile is handed out.",
    )
    server_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Pippin's address as devices reach it; enrollment profiles send devices to "
        "SERVER_URL/mdm/enroll/REF (and, with user affinity, SERVER_URL/enroll/web/REF), REF naming the profile "
        "and revision.",
    )
    device_trust_anchors_file: Path | None = Field(
        default=None,
        description="PEM bundle of the certificate authorities whose devices may enroll through ADE: Apple Root CA, "
        "Apple iPhone Certification Authority and Apple iPhone Device CA (or `pippin sim apple`'s device CA); "
        "unset, ADE enrollment is refused saying what to download.",
    )
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = Field(
        default=(),
        description="Reverse proxies (IP addresses or CIDR ranges, comma-separated) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; from any other peer those headers are ignored.",
    )
    trusted_client_cert_header: str | None = Field(
        default=None,
        description="Header in which a trusted proxy forwards the device's TLS client certificate (RFC 9440 "
        ":base64-DER: or URL-escaped PEM); unset: devices authenticate by Mdm-Signature only.",
    )
    return_to_service: bool = Field(
        default=False,
        description="Whether a device's ReturnToService check-in is told to erase itself and enroll again.",
    )
    webhook_url: str | None = Field(
        default=None,
        description="Where check-in events and command answers are posted as nanomdm/MicroMDM webhook events; "
        "unset: no events are recorded.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC-SHA256 signature of each webhook body (X-Pippin-Signature: sha256=HEX); "
        f"at least {MIN_WEBHOOK_SECRET_CHARS} characters; unset: events are not signed.",
    )
    webhook_timeout: float = Field(default=10.0, gt=0, le=300, description="Seconds one webhook POST may take.")
    webhook_max_age: timedelta = Field(
        default=timedelta(days=3),
        description="A webhook event the receiver has not accepted by this age is given up (logged and counted).",
    )
    webhook_keep_finished: timedelta = Field(
        default=timedelta(days=1),
        description="How long a delivered or given-up webhook event is kept before it is pruned.",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: str = Field(default="text", description="`text` for people, `json` for log collectors.")

    @field_validator("data_dir", mode="before")
    @classmethod
    def _default_when_empty(cls, value: object) -> object:
        """``PIPPIN_DATA_DIR=`` (set but empty) means the default, never the current folder."""
        if isinstance(value, str) and not value.strip():
            return default_data_dir()
        return value

    @field_validator("data_dir")
    @classmethod
    def _usable_path(cls, value: Path) -> Path:
        if "\x00" in str(value):
            raise ValueError("must be a folder's path")
        # Resolved once here, so a later change of folder cannot move the database, and doctor shows the real one.
        path = value.expanduser().absolute()
        if path.exists() and not path.is_dir():
            raise ValueError("names a file, not a folder")
        return path

    @field_validator("database_url")
    @classmethod
    def _driver_for_postgresql(cls, value: str | None) -> str | None:
        """``postgres://`` and ``postgresql://`` (what hosting providers hand out) mean PostgreSQL through psycopg."""
        if value is None or not value.strip():
            return None
        value = value.strip()
        for scheme in ("postgres://", "postgresql://"):
            if value.startswith(scheme):
                value = "postgresql+psycopg://" + value.removeprefix(scheme)
                break
        try:
            backend = make_url(value).get_backend_name()
        except Exception:
            raise ValueError("is not a database URL") from None
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"names the database {backend[:40]!r}; Pippin runs on SQLite and PostgreSQL") from None
        return value

    @field_validator("apns_ca_file", "device_trust_anchors_file", mode="before")
    @classmethod
    def _no_file_when_empty(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("apns_ca_file")
    @classmethod
    def _readable_pem_file(cls, value: Path | None) -> Path | None:
        """Checked at start, so a typo shows now rather than as a TLS failure of every push."""
        if value is None:
            return None
        if "\x00" in str(value):
            raise ValueError("must be a file's path")
        path = value.expanduser().absolute()
        if not path.is_file():
            raise ValueError("names no file")
        try:
            head = path.read_bytes()[:1_000_000]
        except OSError:
            raise ValueError("cannot be read by this user") from None
        if b"-----BEGIN CERTIFICATE-----" not in head:
            raise ValueError("holds no PEM certificate")
        return path

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _no_webhook_when_empty(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _strong_webhook_secret(cls, value: object) -> object:
        """Empty means unset; a short key would make the signature guessable, so it is refused."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            if not value.strip():
                return None
            if len(value) < MIN_WEBHOOK_SECRET_CHARS or not value.isprintable():
                raise ValueError(f"must be at least {MIN_WEBHOOK_SECRET_CHARS} printable characters")
        return value

    @field_validator("dep_base_url", "server_url", "apns_base_url", "webhook_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        """An http or https URL with a host: anything else would only fail later, at the first request."""
        if value is None:
            return None
        value = value.strip()
        try:
            parts = urlsplit(value)
            _ = parts.port  # a port that is not a number raises here
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not value.isprintable():
            raise ValueError("must be an http:// or https:// address with a host name")
        return value

    @field_validator(*_DURATIONS, mode="before")
    @classmethod
    def _seconds_or_iso_duration(cls, value: object) -> object:
        """Durations from the environment: plain seconds (``1800``) or ISO 8601 (``PT30M``)."""
        return _parse_duration_seconds(value)

    @field_validator(*_DURATIONS)
    @classmethod
    def _positive_duration(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value

    @field_validator("push_expiration")
    @classmethod
    def _within_apns_storage(cls, value: timedelta) -> timedelta:
        # APNs stores a push for a limited time whatever the header asks; a longer value would only mislead.
        if value > MAX_PUSH_EXPIRATION:
            raise ValueError(f"must be at most {MAX_PUSH_EXPIRATION.days} days")
        return value

    @field_validator("trusted_client_cert_header", mode="before")
    @classmethod
    def _header_name(cls, value: object) -> object:
        """An HTTP header name (letters, digits, ``-``); empty means unset."""
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
            if len(value) > 64 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
                raise ValueError("must be an HTTP header name such as X-Client-Cert")
            return value.lower()
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        """``10.0.0.5, 10.1.0.0/16, ::1``: each an address or a network without host bits set."""
        if not isinstance(value, str):
            return value
        networks: list[IPNetwork] = []
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item))
            except ValueError:
                problem = f"{item[:60]!r} is not an IP address or a CIDR network (a network's host bits are zero)"
                raise ValueError(problem) from None
        return tuple(networks)

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError("must be `text` or `json`")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return upper

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one, or SQLite inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pippin.db').resolve()}"


#: A valid value for each setting, shown in the error when one is wrong.
EXAMPLES: dict[str, str] = {
    "data_dir": "/var/lib/pippin",
    "database_url": "postgresql://pippin@db.example.com/pippin",
    "secret_key": 'the output of: python -c "import secrets,base64;'
    'print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"',
    "dep_base_url": "https://mdmenrollment.apple.com (or http://127.0.0.1:8080 for `pippin sim apple`)",
    "dep_timeout": "30",
    "dep_max_retries": "5",
    "dep_sync_interval": "PT30M (ISO 8601) or 1800 (seconds)",
    "dep_full_sync_interval": "P7D (ISO 8601) or 604800 (seconds)",
    "dep_sync_window": "PT10M (ISO 8601) or 600 (seconds)",
    "apns_base_url": "https://api.push.apple.com (or https://127.0.0.1:2197 for `pippin sim apple --apns-port 2197`)",
    "apns_ca_file": "/etc/pippin/sim-apns-ca.pem",
    "apns_timeout": "10",
    "apns_max_in_flight": "20",
    "push_expiration": "P7D (ISO 8601) or 604800 (seconds)",
    "push_max_attempts": "12",
    "push_silent_after": "P1D (ISO 8601) or 86400 (seconds)",
    "command_expiration": "P30D (ISO 8601) or 2592000 (seconds)",
    "command_retention": "P30D (ISO 8601) or 2592000 (seconds)",
    "setup_stuck_after": "PT30M (ISO 8601) or 1800 (seconds)",
    "scep_certificate_days": "365",
    "enrollment_challenge_ttl": "PT1H (ISO 8601) or 3600 (seconds)",
    "server_url": "https://mdm.example.com",
    "device_trust_anchors_file": "/etc/pippin/apple-device-cas.pem",
    "trusted_proxies": "10.0.0.5, 10.1.0.0/16",
    "trusted_client_cert_header": "X-Client-Cert (RFC 9440's Client-Cert, or nginx's $ssl_client_escaped_cert)",
    "return_to_service": "false",
    "webhook_url": "https://hooks.example.com/mdm",
    "webhook_secret": "16 or more random characters, e.g. the output of: "
    'python -c "import secrets;print(secrets.token_urlsafe(32))"',
    "webhook_timeout": "10",
    "webhook_max_age": "P3D (ISO 8601) or 259200 (seconds)",
    "webhook_keep_finished": "P1D (ISO 8601) or 86400 (seconds)",
    "log_level": "INFO",
    "log_format": "json",
}


def variable_name(field: str) -> str:
    """The environment variable of a setting: ``dep_sync_window`` is ``PIPPIN_DEP_SYNC_WINDOW``."""
    return ENV_PREFIX + field.upper()


def known_variables() -> tuple[str, ...]:
    return tuple(variable_name(field) for field in Settings.model_fields)


def source_of(field: str, environ: Mapping[str, str] | None = None) -> str:
    """Where a setting's value came from: ``environment`` or ``default``."""
    env = os.environ if environ is None else environ
    return "environment" if variable_name(field) in env else "default"


class InvalidSettings(InvalidInput):
    """One or more ``PIPPIN_*`` variables hold a value Pippin cannot use; nothing was started or changed."""

    code = "invalid_settings"

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "Invalid PIPPIN_* setting: " + "; ".join(problems),
            hint="Correct the variable (the README's Settings table lists each one) and run the command again.",
        )
        self.problems = problems


def _problem(error: Mapping[str, Any]) -> str:
    location = error.get("loc") or ()
    field = str(location[0]) if location else ""
    reason = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    if field not in Settings.model_fields:
        return reason
    # The value itself is never repeated: it may be a master key or a password inside a URL.
    return f"{variable_name(field)}: {reason}; for example {variable_name(field)}={EXAMPLES.get(field, '...')}"


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """The settings from ``environ`` (the process environment by default), or :class:`InvalidSettings`.

    ``overrides`` are passed to :class:`Settings` as keyword arguments, above the environment.
    """
    env = os.environ if environ is None else environ
    values = {
        field: env[variable_name(field)]
        for field in Settings.model_fields
        if variable_name(field) in env and field not in overrides
    }
    try:
        # Only the values read here: a Settings() of its own would read os.environ again.
        return Settings.model_validate({**values, **overrides})
    except ValidationError as exc:
        raise InvalidSettings([_problem(error) for error in exc.errors()]) from None


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """Every ``PIPPIN_*`` variable that is no setting (reserved test prefixes aside), with the closest setting."""
    env = os.environ if environ is None else environ
    known = known_variables()
    found: list[tuple[str, str | None]] = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in known or name.startswith(RESERVED_PREFIXES):
            continue
        # Compared without the shared prefix, which would make every name look close to every other.
        suffixes = [variable.removeprefix(ENV_PREFIX) for variable in known]
        closest = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), suffixes, n=1, cutoff=0.6)
        found.append((name, ENV_PREFIX + closest[0] if closest else None))
    return found
