"""Every CLI command that changes something leaves exactly one audit event (the OS user on this host);
a refused command leaves none. SQLite alone, against the simulated Apple."""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from pippin.cli.main import app
from pippin.config import Settings
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import AuditEvent
from tests.e2e.apple import ADMIN, add_devices
from tests.servers import quick_password_hashes
from tests.simulator import RunningSimulator

Run = Callable[..., Result]


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_password_hashes(monkeypatch)


@pytest.fixture
def pippin(settings: Settings, sim: RunningSimulator) -> Run:
    assert settings.secret_key is not None
    env = {
        "PIPPIN_DATA_DIR": str(settings.data_dir),
        "PIPPIN_DATABASE_URL": str(settings.database_url),
        "PIPPIN_SECRET_KEY": settings.secret_key.get_secret_value(),
        "PIPPIN_DEP_BASE_URL": sim.base_url,
        "PIPPIN_DEP_MAX_RETRIES": "1",
        "PIPPIN_SERVER_URL": "https://mdm.example.com",
    }
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), env=env, input=input)

    return run


def _events(factory: SessionFactory) -> list[tuple[str, str, str, str | None, str | None]]:
    with transaction(factory) as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(event.actor, event.interface, event.action, event.target, event.source) for event in rows]


def test_each_changing_command_is_one_audit_event(
    pippin: Run, session_factory: SessionFactory, sim: RunningSimulator, tmp_path: Path
) -> None:
    seen = 0
    user, host = getpass.getuser(), socket.gethostname()

    def one_event(result: Result, action: str, target: str | None) -> None:
        nonlocal seen
        assert result.exit_code == 0, result.output
        events = _events(session_factory)
        assert events[seen:] == [(user, "cli", action, target, host)]
        seen = len(events)

    pem = tmp_path / "acme.pem"
    one_event(pippin("dep", "keypair", "acme", "-o", str(pem)), "dep.keypair.create", "acme")
    server = sim.portal.post(
        "/portal/mdm-servers", json={"name": "acme MDM", "public_key_pem": pem.read_text(), "admin_apple_id": ADMIN}
    ).json()
    serials = add_devices(sim, server["server_uuid"], 3)
    p7m = tmp_path / "acme_smime.p7m"
    p7m.write_bytes(sim.portal.get(f"/portal/mdm-servers/{server['server_uuid']}/token").content)
    one_event(pippin("dep", "upload-token", "acme", str(p7m), "--apple-id", ADMIN), "dep.token.upload", "acme")
    one_event(pippin("dep", "sync", "acme"), "dep.sync.start", "acme")
    one_event(pippin("profiles", "create", "Staff"), "profile.create", "Staff")
    one_event(pippin("profiles", "edit", "Staff", "--department", "IT"), "profile.update", "Staff")
    added = pippin("profiles", "setup-commands", "add", "Staff", "--device-name", "iPad-{serial}", "--json")
    one_event(added, "profile.setup_command.add", "Staff")
    removed = pippin("profiles", "setup-commands", "remove", "Staff", str(json.loads(added.stdout)["id"]))
    one_event(removed, "profile.setup_command.remove", "Staff")
    one_event(pippin("profiles", "set-default", "acme", "Staff"), "profile.set_default", "acme")
    one_event(pippin("profiles", "assign", "Staff", serials[0], "--queue-only"), "profile.assign", "Staff")
    one_event(pippin("profiles", "retry-due"), "profile.retry_due", None)
    one_event(pippin("profiles", "create", "Spare"), "profile.create", "Spare")
    one_event(pippin("profiles", "delete", "Spare"), "profile.delete", "Spare")
    one_event(pippin("admin", "token", "create", "ci"), "admin.api_token.create", "ci")
    one_event(pippin("admin", "token", "revoke", "ci"), "admin.api_token.revoke", "ci")
    created = pippin("admin", "user", "create", "Bo@Example.com", "--password-stdin", input="a long passphrase\n")
    one_event(created, "admin.user.create", "bo@example.com")
    # Reading records nothing.
    for args in (("dep", "tokens"), ("profiles", "list"), ("devices", "list"), ("audit", "list", "--json")):
        assert pippin(*args).exit_code == 0
    assert len(_events(session_factory)) == seen == 15


def test_a_refused_command_leaves_no_audit_event(pippin: Run, session_factory: SessionFactory, tmp_path: Path) -> None:
    garbage = tmp_path / "x_smime.p7m"
    garbage.write_bytes(b"<script>alert(1)</script>")
    refused = [
        pippin("dep", "keypair", "bad name"),
        pippin("dep", "upload-token", "nope", str(garbage), "--apple-id", ADMIN),
        pippin("dep", "sync", "nope"),
        pippin("profiles", "create", "Bad", "--locked"),
        pippin("profiles", "edit", "nope", "--department", "IT"),
        pippin("profiles", "delete", "nope"),
        pippin("profiles", "set-default", "nope", "Staff"),
        pippin("profiles", "assign", "nope", "--all-unassigned"),
        pippin("profiles", "retry-due", "--token", "nope"),
        pippin("admin", "token", "revoke", "nope"),
        pippin("admin", "token", "create", "bad name"),
        pippin("admin", "user", "create", "not-an-email", "--password-stdin", input="a long passphrase\n"),
    ]
    assert all(result.exit_code != 0 for result in refused), [result.output for result in refused]
    assert _events(session_factory) == []
