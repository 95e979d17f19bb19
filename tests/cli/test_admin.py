"""`pippin admin token create | list | revoke`: a token printed once that the API accepts, until revoked; and
`pippin admin user create`'s refusal of addresses and passwords holding control characters."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from pippin.config import Settings
from pippin.server.app import create_server
from tests.cli.conftest import Pippin


def test_a_created_token_authenticates_until_it_is_revoked(pippin: Pippin, settings: Settings) -> None:
    created = pippin("admin", "token", "create", "ci-deploy")
    assert created.exit_code == 0, created.output
    token = created.stdout.splitlines()[0]
    assert token.startswith("pippin_") and "Authorization: Bearer" in created.stdout
    with TestClient(create_server(settings)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/dep/tokens", headers=headers).status_code == 200
        revoked = pippin("admin", "token", "revoke", "ci-deploy")
        assert revoked.exit_code == 0 and "revoked" in revoked.stdout
        assert client.get("/api/v1/dep/tokens", headers=headers).status_code == 401


def test_list_shows_names_and_dates_never_the_token(pippin: Pippin) -> None:
    token = pippin("admin", "token", "create", "ops").stdout.splitlines()[0]
    pippin("admin", "token", "create", "old")
    pippin("admin", "token", "revoke", "old")
    listed = pippin("admin", "token", "list", "--json")
    assert listed.exit_code == 0
    assert [(item["name"], item["active"]) for item in json.loads(listed.stdout)] == [("ops", True), ("old", False)]
    assert set(json.loads(listed.stdout)[0]) == {"name", "scope", "created_at", "last_used_at", "revoked_at", "active"}
    table = pippin("admin", "token", "list")
    assert "ops" in table.stdout and "old" in table.stdout
    for output in (listed.stdout, table.stdout):
        assert token not in output and token[7:] not in output


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("admin", "token", "create", "../x"), 2),
        (("admin", "token", "create", "x" * 10_000), 2),
        (("admin", "token", "revoke", "ghost"), 3),
        (("admin", "token", "create", "."), 2),
        (("admin", "token", "create", "--", "-x"), 2),
        (("admin", "token", "create", "x" * 65), 2),
        (("admin", "token", "create", "ci\u202edeploy"), 2),
        (("admin", "token", "revoke", "ci\x1bdeploy"), 2),
    ],
)
def test_bad_input_exits_with_its_code_and_a_hint(pippin: Pippin, args: tuple[str, ...], code: int) -> None:
    result = pippin(*args)
    assert result.exit_code == code
    assert "error:" in result.stderr and len(result.stderr) < 2000


def test_a_taken_name_is_a_conflict(pippin: Pippin) -> None:
    assert pippin("admin", "token", "create", "ops").exit_code == 0
    again = pippin("admin", "token", "create", "ops")
    assert again.exit_code == 4 and "pippin_" not in again.stdout


@pytest.mark.parametrize(
    ("email", "password", "rule"),
    [
        ("bo@example.com", "\x01" * 20, "The password contains U+0001"),
        ("bo@example.com", "a long\x1b passphrase", "The password contains U+001B"),
        ("bo@example.com\u202e", "a long passphrase", "The e-mail address contains U+202E"),
        ("b\u200bo@example.com", "a long passphrase", "The e-mail address contains U+200B"),
        ("bo@example", "a long passphrase", "not an e-mail address"),
        ("<script>@example.com", "a long passphrase", "not an e-mail address"),
    ],
)
def test_a_user_with_a_control_character_in_the_address_or_password_is_refused(
    pippin: Pippin, email: str, password: str, rule: str
) -> None:
    result = pippin("admin", "user", "create", email, "--password-stdin", input=password + "\n")
    assert result.exit_code == 2, result.output
    assert rule in result.stderr and "Traceback" not in result.output
    assert json.loads(pippin("admin", "user", "list", "--json").stdout) == []


def test_a_password_in_any_script_is_accepted(pippin: Pippin) -> None:
    result = pippin("admin", "user", "create", "bo@example.com", "--password-stdin", input="pässwörd 東京 📱 lång\n")
    assert result.exit_code == 0, result.output
