"""`pippin doctor`: what this Pippin would run with, and whether what it needs answers.

It prints the settings in force (secrets masked) and where each came from, the data directory, the database,
the master key's fingerprint and whether it is the key the database's secrets are sealed with, Apple's DEP
service, each checked with a short timeout, and the device trust anchors ADE enrollment checks devices against.
It changes nothing: no database or key file is created, no migration is run, so it is safe on a machine that is
not set up yet. It
exits 0 when everything answers, 5 when the database or Apple cannot be reached, 1 when something is wrong
with the configuration itself (a master key file others can read, one that is not a key, a trust anchor file
that cannot be read or holds no certificate).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Annotated, Literal

import httpx
import typer
from cryptography import x509
from cryptography.x509.oid import NameOID
from rich.table import Table
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from pippin.admin.master_key import SHARE_KEY_HINT, find_check, key_left_by_rotation, read_master_key
from pippin.cli.context import cli_context
from pippin.cli.output import cell, print_json, stdout
from pippin.config import Settings, source_of, unknown_variables, variable_name
from pippin.crypto.secrets import KEY_FILE_NAME, SecretBox, key_fingerprint, parse_master_key
from pippin.errors import ConfigurationError, PippinError
from pippin.mdm.trust_anchors import load_device_trust_anchors
from pippin.printable import printable
from pippin.private_files import PRIVATE_DIRECTORY_MODE
from pippin.store.db import DatabaseUnavailable, create_db_engine, create_session_factory, read_transaction
from pippin.store.migrate import current_revision, head_revision
from pippin.store.models import MasterKeyCheck

APPLE_DEP_URL = "https://mdmenrollment.apple.com"
#: How long each reachability check may take, whatever the configured timeouts are.
CHECK_TIMEOUT_SECONDS = 5.0

Status = Literal["ok", "warning", "failed"]


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it went, and the exit code if it failed."""

    name: str
    status: Status
    detail: str
    exit_code: int = 0


def _reason(exc: BaseException) -> str:
    """The kind of failure and the first line of its message, short and printable (a driver's message names
    hosts and users, never passwords)."""
    first_line = str(exc).strip().split("\n", 1)[0]
    return printable(f"{type(exc).__name__}: {first_line}"[:200])


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        # Not even a URL: shown by its length alone, since it may be a password pasted in the wrong place.
        return f"(not a URL, {len(url)} characters)"


def shown_setting(settings: Settings, field: str) -> str:
    value = getattr(settings, field)
    if field == "secret_key":
        return "not set" if value is None else "set (hidden)"
    if field in ("database_url", "dep_base_url", "server_url", "webhook_url") and isinstance(value, str):
        return masked_url(value)
    if isinstance(value, tuple):
        return ", ".join(str(item) for item in value) or "-"
    return "-" if value is None else str(value)


def check_data_dir(settings: Settings) -> Check:
    path = settings.data_dir
    if not path.exists():
        return Check("data directory", "warning", f"{path} does not exist yet; the first command creates it")
    if not path.is_dir():
        return Check("data directory", "failed", f"{path} is not a folder", exit_code=1)
    mode = stat.S_IMODE(path.stat().st_mode)
    writable = os.access(path, os.W_OK)
    detail = f"{path} (mode {mode:o}{'' if writable else ', not writable by this user'})"
    if not writable:
        return Check("data directory", "failed", detail, exit_code=1)
    if mode & ~PRIVATE_DIRECTORY_MODE:
        return Check("data directory", "warning", f"{detail}: other users can reach it; the next command makes it 700")
    return Check("data directory", "ok", detail)


def check_database(settings: Settings) -> Check:
    url = settings.resolved_database_url
    shown = masked_url(url)
    try:
        parsed = make_url(url)
    except Exception:
        return Check("database", "failed", f"{shown}: not a database URL", exit_code=2)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not os.path.exists(parsed.database):
        return Check("database", "warning", f"{shown}: not created yet; the first command creates it")
    connect_args = {"connect_timeout": int(CHECK_TIMEOUT_SECONDS)} if parsed.get_backend_name() == "postgresql" else {}
    try:
        engine = create_db_engine(url, private_files=False, **({"connect_args": connect_args} if connect_args else {}))
    except PippinError as error:
        return Check("database", "failed", f"{shown}: {error.message}", exit_code=2)
    try:
        current, head = current_revision(engine), head_revision(engine)
    except DatabaseUnavailable as error:
        return Check("database", "failed", f"{shown}: unreachable ({error.reason})", exit_code=5)
    except Exception as exc:
        return Check("database", "failed", f"{shown}: unreachable ({_reason(exc)})", exit_code=5)
    finally:
        engine.dispose()
    if current == head:
        return Check("database", "ok", f"{shown}: reachable, schema {current} (newest)")
    schema = "empty" if current is None else f"schema {current}"
    return Check("database", "warning", f"{shown}: reachable, {schema}; the next command migrates it to {head}")


def check_master_key(settings: Settings) -> Check:
    try:
        if settings.secret_key is not None:
            key = parse_master_key(settings.secret_key.get_secret_value(), source="PIPPIN_SECRET_KEY")
            return Check("master key", "ok", f"from PIPPIN_SECRET_KEY, fingerprint {key_fingerprint(key)}")
        path = settings.data_dir / KEY_FILE_NAME
        if not path.exists():
            return Check("master key", "warning", f"{path} does not exist yet; the first command creates it")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            return Check("master key", "failed", f"{path} can be read by other users (mode {mode:o})", exit_code=1)
        key = parse_master_key(path.read_text(encoding="ascii", errors="replace"), source=str(path))
    except PippinError as error:
        return Check("master key", "failed", error.message, exit_code=1)
    except OSError as exc:
        return Check("master key", "failed", f"cannot read the key file ({_reason(exc)})", exit_code=1)
    return Check("master key", "ok", f"from {path}, fingerprint {key_fingerprint(key)}")


def check_key_matches_database(settings: Settings) -> Check:
    """Whether this process's master key is the one the database's secrets are sealed with (a read, no write)."""
    name = "master key in database"
    try:
        key = read_master_key(settings)
    except PippinError:
        return Check(name, "warning", "not compared: the master key itself is not usable (see above)")
    url = settings.resolved_database_url
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database and not os.path.exists(parsed.database):
            return Check(name, "warning", "no database yet; the first process to use it records its key")
        connect_args = (
            {"connect_timeout": int(CHECK_TIMEOUT_SECONDS)} if parsed.get_backend_name() == "postgresql" else {}
        )
        engine = create_db_engine(url, private_files=False, **({"connect_args": connect_args} if connect_args else {}))
    except Exception:
        return Check(name, "warning", "not compared: the database cannot be opened (see above)")
    try:
        if MasterKeyCheck.__tablename__ not in inspect(engine).get_table_names():
            return Check(name, "warning", "not compared: the database's schema has no key check yet")
        with read_transaction(create_session_factory(engine)) as session:
            recorded = find_check(session)
    except Exception as exc:
        return Check(name, "warning", f"not compared: the database did not answer ({_reason(exc)})")
    finally:
        engine.dispose()
    if recorded is None:
        return Check(name, "warning", "not recorded yet; the first command that uses secrets records this key")
    if key is None or not SecretBox(key).matches(recorded.check_value):
        if key_left_by_rotation(settings, recorded.check_value):
            return Check(name, "warning", "a rotation was interrupted; the next command puts master.key.new in place")
        mine = "this process has no key yet" if key is None else f"this process has {key_fingerprint(key)}"
        return Check(
            name,
            "failed",
            f"does not match: the database's secrets are sealed with {recorded.fingerprint}, {mine}. {SHARE_KEY_HINT}",
            exit_code=1,
        )
    return Check(name, "ok", f"matches the key the database's secrets are sealed with ({recorded.fingerprint})")


def check_apple(settings: Settings, *, transport: httpx.BaseTransport | None = None) -> Check:
    url = settings.dep_base_url
    whose = "Apple's DEP service" if url.rstrip("/") == APPLE_DEP_URL else "not Apple's own service"
    shown = f"{masked_url(url)} ({whose})"
    timeout = min(CHECK_TIMEOUT_SECONDS, settings.dep_timeout)
    try:
        with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as client:
            response = client.get(url)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        return Check("Apple DEP", "failed", f"{shown}: unreachable ({_reason(exc)})", exit_code=5)
    # Any answer means the service is there; its root path needs no token and answers no data.
    return Check("Apple DEP", "ok", f"{shown}: reachable (HTTP {response.status_code})")


def check_device_trust_anchors(settings: Settings) -> Check:
    """Whether ADE enrollment can tell Apple's devices: the trust anchor bundle is set, readable and holds
    certificates (``mdm/trust_anchors.py``). Unset is a warning: everything but ADE enrollment works without it."""
    name = "device trust anchors"
    variable = variable_name("device_trust_anchors_file")
    if settings.device_trust_anchors_file is None:
        return Check(name, "warning", f"{variable} is not set: ADE enrollment is refused until it names Apple's CAs")
    try:
        anchors = load_device_trust_anchors(settings)
    except ConfigurationError as error:
        return Check(name, "failed", error.message, exit_code=1)
    subjects = ", ".join(_common_name(anchor) for anchor in anchors[:4]) + (", ..." if len(anchors) > 4 else "")
    return Check(name, "ok", printable(f"{len(anchors)} certificate{'s' if len(anchors) != 1 else ''}: {subjects}"))


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value)[:80] if names else certificate.subject.rfc4514_string()[:80]


def run_checks(settings: Settings, *, transport: httpx.BaseTransport | None = None) -> list[Check]:
    checks = [
        Check("unknown variable", "warning", f"{name} is ignored" + (f"; did you mean {near}?" if near else ""))
        for name, near in unknown_variables()
    ]
    return [
        *checks,
        check_data_dir(settings),
        check_database(settings),
        check_master_key(settings),
        check_key_matches_database(settings),
        check_apple(settings, transport=transport),
        check_device_trust_anchors(settings),
    ]


def doctor(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show the settings in force (secrets masked) and check the data directory, database, master key, Apple and
    the device trust anchors."""
    settings = cli_context(ctx).settings
    checks = run_checks(settings)
    code = next((check.exit_code for check in checks if check.status == "failed" and check.exit_code), 0)
    if json_output:
        print_json(
            {
                "settings": {
                    variable_name(field): {"value": shown_setting(settings, field), "source": source_of(field)}
                    for field in Settings.model_fields
                },
                "checks": [{"name": c.name, "status": c.status, "detail": c.detail} for c in checks],
            }
        )
    else:
        settings_table = Table("setting", "from", title="Settings")
        settings_table.add_column("value", overflow="fold")
        for field in Settings.model_fields:
            settings_table.add_row(cell(variable_name(field)), source_of(field), cell(shown_setting(settings, field)))
        stdout.print(settings_table)
        styles = {"ok": "green", "warning": "yellow", "failed": "bold red"}
        checks_table = Table("check", "status", title="Checks")
        checks_table.add_column("detail", overflow="fold")
        for check in checks:
            checks_table.add_row(cell(check.name), cell(check.status, style=styles[check.status]), cell(check.detail))
        stdout.print(checks_table)
    if code:
        raise typer.Exit(code)
