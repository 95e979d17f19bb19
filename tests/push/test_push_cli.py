"""`pippin push test` and `pippin push status`: translation only (output, JSON keys, exit codes).

The command is built with a certificate store and an APNs client of the test's own (``create_push_app``): a real
push identity, and the real APNs client over an ``httpx.MockTransport`` standing in for APNs.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable

import httpx
import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner, Result

from pippin.cli.main import PippinGroup, root
from pippin.cli.push import create_push_app
from pippin.config import Settings
from pippin.push.apns import APNsClient
from pippin.push.delivery import IdentityLoader
from pippin.push.identity import PushIdentity
from pippin.store.db import SessionFactory, read_transaction
from pippin.store.models import AuditEvent
from tests.push.conftest import enroll
from tests.push.identities import push_identity

TOKEN = "ab" * 32


@pytest.fixture
def requests() -> list[httpx.Request]:
    return []


def cli(
    settings: Settings,
    identity: PushIdentity | None,
    handler: Callable[[httpx.Request], httpx.Response],
    seen: list[httpx.Request],
) -> Callable[..., Result]:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    def open_sender(configured: Settings) -> APNsClient:
        def transport(_context: ssl.SSLContext) -> httpx.BaseTransport:
            return httpx.MockTransport(answer)

        return APNsClient.from_settings(configured, open_transport=transport)

    def certificate(_context: object) -> IdentityLoader:
        return lambda _session: identity

    app = typer.Typer(cls=PippinGroup)
    app.callback()(root)
    app.add_typer(create_push_app(certificate=certificate, open_sender=open_sender), name="push")
    assert settings.secret_key is not None
    env = {
        "PIPPIN_DATA_DIR": str(settings.data_dir),
        "PIPPIN_DATABASE_URL": str(settings.database_url),
        "PIPPIN_SECRET_KEY": settings.secret_key.get_secret_value(),
        "PIPPIN_APNS_BASE_URL": "https://apns.example.test",
        "COLUMNS": "200",
    }
    return lambda *args: CliRunner().invoke(app, list(args), env=env)


def test_push_test_sends_one_push_and_shows_apples_answer(
    settings: Settings, session_factory: SessionFactory, requests: list[httpx.Request]
) -> None:
    identity = push_identity()
    run = cli(settings, identity, lambda _r: httpx.Response(200, headers={"apns-id": "A-1"}), requests)
    result = run("push", "test", TOKEN.upper(), "--magic", "MAGIC-1")
    assert result.exit_code == 0, result.output
    assert "outcome:   delivered" in result.output
    assert "status:    200" in result.output and "apns-id:   A-1" in result.output
    [request] = requests
    assert str(request.url) == f"https://apns.example.test/3/device/{TOKEN}"
    assert request.content == b'{"mdm":"MAGIC-1"}'
    assert request.headers["apns-topic"] == identity.topic
    with read_transaction(session_factory) as session:
        [event] = session.scalars(select(AuditEvent)).all()
    assert (event.action, event.target, event.detail["status"]) == ("push.test", TOKEN[:8], 200)


def test_push_test_shows_a_refusal_as_json(settings: Settings, requests: list[httpx.Request]) -> None:
    refused = lambda _r: httpx.Response(410, json={"reason": "Unregistered", "timestamp": 1})  # noqa: E731
    result = cli(settings, push_identity(), refused, requests)("push", "test", TOKEN, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert (shown["result"], shown["status"], shown["reason"]) == ("token_refused", 410, "Unregistered")
    assert json.loads(requests[0].content)["mdm"]  # a random PushMagic when none is given


@pytest.mark.parametrize("token", ["not-hex", "abc", "a" * 300])
def test_push_test_refuses_a_bad_token_and_sends_nothing(
    settings: Settings, requests: list[httpx.Request], token: str
) -> None:
    result = cli(settings, push_identity(), lambda _r: httpx.Response(200), requests)("push", "test", token)
    assert result.exit_code == 2
    assert "hexadecimal" in result.output
    assert requests == []


def test_push_test_without_a_certificate_says_what_to_do(settings: Settings, requests: list[httpx.Request]) -> None:
    result = cli(settings, None, lambda _r: httpx.Response(200), requests)("push", "test", TOKEN)
    assert result.exit_code == 3
    assert "Upload the APNs push certificate" in result.output
    assert requests == []


def test_push_device_shows_a_devices_counts(
    settings: Settings, session_factory: SessionFactory, requests: list[httpx.Request]
) -> None:
    [udid] = enroll(session_factory, 1)
    run = cli(settings, push_identity(), lambda _r: httpx.Response(200), requests)
    shown = run("push", "device", udid)
    assert shown.exit_code == 0, shown.output
    assert "token:        valid" in shown.output and "pushes:       0" in shown.output
    as_json = json.loads(run("push", "device", udid, "--json").output)
    assert as_json["counts"]["pushes"] == 0 and "push_magic" not in as_json
    assert run("push", "device", "NO-SUCH-UDID").exit_code == 3
