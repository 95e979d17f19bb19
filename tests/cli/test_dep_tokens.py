"""`pippin dep keypair | upload-token | tokens | account`: the admin's steps 2-4 from a shell, against the simulator.

These check translation only: exit codes, one-line errors with a hint, the JSON keys and the table. The service
beneath is tested on both databases in tests/dep/; here SQLite alone keeps the suite quick.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from pippin.cli.main import app
from pippin.config import Settings
from pippin.text import MAX_DEP_TOKEN_NAME
from tests.dep.test_token_sim import ADMIN, create_server, download_token
from tests.simulator import RunningSimulator


@pytest.fixture
def pippin(settings: Settings, sim: RunningSimulator) -> Any:
    """Run `pippin ...` with the test database, master key and the simulator as Apple."""
    assert settings.secret_key is not None
    env = {
        "PIPPIN_DATA_DIR": str(settings.data_dir),
        "PIPPIN_DATABASE_URL": str(settings.database_url),
        "PIPPIN_SECRET_KEY": settings.secret_key.get_secret_value(),
        "PIPPIN_DEP_BASE_URL": sim.base_url,
        "PIPPIN_DEP_MAX_RETRIES": "1",
        "COLUMNS": "250",
    }
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    return run


def _connect(pippin: Any, sim: RunningSimulator, tmp_path: Path, *, apple_id: str = ADMIN) -> tuple[str, Path]:
    pem_file = tmp_path / "acme.pem"
    made = pippin("dep", "keypair", "acme", "-o", str(pem_file))
    assert made.exit_code == 0, made.output
    server_uuid = create_server(sim, pem_file.read_text())
    token_file = tmp_path / "acme_smime.p7m"
    token_file.write_bytes(download_token(sim, server_uuid))
    uploaded = pippin("dep", "upload-token", "acme", str(token_file), "--apple-id", apple_id)
    assert uploaded.exit_code == 0, uploaded.output
    assert "Acme MDM" in uploaded.stdout and server_uuid in uploaded.stdout
    return server_uuid, token_file


def _tokens(pippin: Any) -> list[dict[str, Any]]:
    listed = pippin("dep", "tokens", "--json")
    assert listed.exit_code == 0, listed.output
    tokens: list[dict[str, Any]] = json.loads(listed.stdout)
    return tokens


def test_keypair_upload_tokens_and_account(pippin: Any, sim: RunningSimulator, tmp_path: Path) -> None:
    server_uuid, _ = _connect(pippin, sim, tmp_path)
    (token,) = _tokens(pippin)
    assert {
        "name",
        "server_uuid",
        "server_name",
        "org_name",
        "apple_id",
        "admin_id",
        "expires_at",
        "days_left",
        "expiry_level",
        "status",
        "last_error",
        "last_error_at",
        "uploaded_at",
        "has_pending_keypair",
    } <= token.keys()
    assert (token["name"], token["server_uuid"], token["status"], token["apple_id"]) == (
        "acme",
        server_uuid,
        "ok",
        ADMIN,
    )
    assert token["days_left"] >= 364 and token["expiry_level"] == "ok"
    table = pippin("dep", "tokens")
    assert table.exit_code == 0
    for shown in ("acme", "Acme MDM", server_uuid, ADMIN, "days left", "ok"):
        assert shown in table.stdout
    account = pippin("dep", "account", "acme", "--json")
    assert account.exit_code == 0, account.output
    assert json.loads(account.stdout)["server_uuid"] == server_uuid
    assert server_uuid in pippin("dep", "account", "acme").stdout


def test_keypair_prints_the_pem_and_guards_an_existing_file(pippin: Any, tmp_path: Path) -> None:
    printed = pippin("dep", "keypair", "acme")
    assert printed.exit_code == 0
    assert printed.stdout.startswith("-----BEGIN CERTIFICATE-----")
    assert "Upload Public Key" in printed.stderr
    target = tmp_path / "acme.pem"
    target.write_text("keep me")
    refused = pippin("dep", "keypair", "acme", "-o", str(target))
    assert refused.exit_code == 4
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    assert target.read_text() == "keep me"
    forced = pippin("dep", "keypair", "acme", "-o", str(target), "--force")
    assert forced.exit_code == 0
    assert target.read_text() == printed.stdout


@pytest.mark.parametrize("where", ["missing/acme.pem", "", "/proc/self/no-such-folder/acme.pem"])
def test_keypair_to_an_impossible_file_leaves_neither_key_nor_event(pippin: Any, tmp_path: Path, where: str) -> None:
    target = tmp_path / where if where and not where.startswith("/") else Path(where or tmp_path)
    before = sorted(tmp_path.rglob("*"))
    refused = pippin("dep", "keypair", "acme", "-o", str(target))
    assert refused.exit_code == 2, refused.output
    assert "Cannot write" in refused.stderr or "is a folder" in refused.stderr
    assert _tokens(pippin) == []
    audit = pippin("audit", "list", "--json")
    assert audit.exit_code == 0 and json.loads(audit.stdout) == []
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("content", "exit_code", "says"),
    [
        (b"", 2, "empty"),
        (os.urandom(300), 2, "not a DEP server token"),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 2, "PEM certificate"),
    ],
)
def test_bad_files_exit_non_zero_with_cause_and_fix(
    pippin: Any, tmp_path: Path, content: bytes, exit_code: int, says: str
) -> None:
    assert pippin("dep", "keypair", "acme").exit_code == 0
    bad = tmp_path / "bad.p7m"
    bad.write_bytes(content)
    result = pippin("dep", "upload-token", "acme", str(bad), "--apple-id", ADMIN)
    assert result.exit_code == exit_code
    lines = result.stderr.strip().splitlines()
    assert says in lines[0] and lines[0].startswith("error:")
    assert ".p7m" in lines[1]
    assert _tokens(pippin)[0]["status"] == "awaiting_token"


def test_missing_file_unknown_name_and_bad_name(pippin: Any, tmp_path: Path) -> None:
    missing = pippin("dep", "upload-token", "acme", str(tmp_path / "nope.p7m"), "--apple-id", ADMIN)
    assert missing.exit_code == 2 and "Cannot read" in missing.stderr
    (tmp_path / "t.p7m").write_bytes(b"x")
    unknown = pippin("dep", "upload-token", "ghost", str(tmp_path / "t.p7m"), "--apple-id", ADMIN)
    assert unknown.exit_code == 3 and "pippin dep keypair ghost" in unknown.stderr
    bad_name = pippin("dep", "keypair", "no/slashes")
    assert bad_name.exit_code == 2 and "1-53 letters" in bad_name.stderr
    assert pippin("dep", "account", "ghost").exit_code == 3


def test_other_apple_id_warns(pippin: Any, sim: RunningSimulator, tmp_path: Path) -> None:
    pem_file = tmp_path / "acme.pem"
    assert pippin("dep", "keypair", "acme", "-o", str(pem_file)).exit_code == 0
    token_file = tmp_path / "t.p7m"
    token_file.write_bytes(download_token(sim, create_server(sim, pem_file.read_text()), apple_id="bob@example.com"))
    result = pippin("dep", "upload-token", "acme", str(token_file), "--apple-id", ADMIN, "--json")
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "bob@example.com" in result.stderr
    assert json.loads(result.stdout)["warnings"][0].startswith("Apple says this token was downloaded by bob@")


def test_unsigned_terms_and_a_replaced_token_are_named_with_the_fix(
    pippin: Any, sim: RunningSimulator, tmp_path: Path
) -> None:
    server_uuid, _ = _connect(pippin, sim, tmp_path)
    assert sim.portal.post("/portal/terms").status_code == 200
    refused = pippin("dep", "account", "acme")
    assert refused.exit_code != 0
    assert "terms and conditions" in refused.stderr and "accept" in refused.stderr
    (token,) = _tokens(pippin)
    assert token["status"] == "terms_not_signed"
    assert "accept" in token["last_error"] and token["last_error_at"]
    assert "terms and conditions" in pippin("dep", "tokens").stdout
    assert sim.portal.post("/portal/terms/accept").status_code == 200
    assert pippin("dep", "account", "acme").exit_code == 0
    assert _tokens(pippin)[0]["status"] == "ok"

    download_token(sim, server_uuid)  # a newer download at Apple revokes the uploaded token
    rejected = pippin("dep", "account", "acme")
    assert rejected.exit_code != 0 and "rejected" in rejected.stderr
    assert _tokens(pippin)[0]["status"] == "token_rejected"


def test_renewal_from_another_server_needs_force(pippin: Any, sim: RunningSimulator, tmp_path: Path) -> None:
    _connect(pippin, sim, tmp_path)
    other_uuid = create_server(sim, (tmp_path / "acme.pem").read_text(), name="Other MDM")
    other = tmp_path / "other.p7m"
    other.write_bytes(download_token(sim, other_uuid))
    refused = pippin("dep", "upload-token", "acme", str(other), "--apple-id", ADMIN)
    assert refused.exit_code == 4 and "--force" in refused.stderr
    assert _tokens(pippin)[0]["server_name"] == "Acme MDM"
    forced = pippin("dep", "upload-token", "acme", str(other), "--apple-id", ADMIN, "--force")
    assert forced.exit_code == 0, forced.output
    assert _tokens(pippin)[0]["server_uuid"] == other_uuid


def test_a_name_at_the_certificate_limit_makes_a_key_pair_and_one_past_it_is_refused(
    pippin: Any, tmp_path: Path
) -> None:
    at_limit = "n" * MAX_DEP_TOKEN_NAME
    made = pippin("dep", "keypair", at_limit, "-o", str(tmp_path / "k.pem"))
    assert made.exit_code == 0, made.output
    for name in ("n" * (MAX_DEP_TOKEN_NAME + 1), "n" * 64, ".", "..", "Büro", "a b"):
        refused = pippin("dep", "keypair", name)
        assert refused.exit_code == 2, refused.output
        assert f"1-{MAX_DEP_TOKEN_NAME} letters" in refused.stderr and "Traceback" not in refused.output
    dash = pippin("dep", "keypair", "--", "-x")
    assert dash.exit_code == 2 and "starting with a letter or digit" in dash.stderr
    bidi = pippin("dep", "keypair", "ac\u202eme")
    assert bidi.exit_code == 2 and "U+202E" in bidi.stderr


@pytest.mark.parametrize("apple_id", ["a\x01@x.com", "<script>@x.com", "x@y", "it@example.com\u2028"])
def test_a_hostile_apple_id_is_refused_naming_it(pippin: Any, tmp_path: Path, apple_id: str) -> None:
    assert pippin("dep", "keypair", "acme", "-o", str(tmp_path / "acme.pem")).exit_code == 0
    (tmp_path / "t.p7m").write_bytes(b"x")
    refused = pippin("dep", "upload-token", "acme", str(tmp_path / "t.p7m"), "--apple-id", apple_id)
    assert refused.exit_code == 2, refused.output
    assert "The Apple ID" in refused.stderr and "Traceback" not in refused.output
