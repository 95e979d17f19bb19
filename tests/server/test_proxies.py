"""Forwarded headers: believed from the proxies in PIPPIN_TRUSTED_PROXIES only, for the client and the scheme."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pippin.admin import users as user_service
from pippin.config import Settings
from pippin.server.proxies import (
    TrustedProxyHeaders,
    came_over_https,
    client_address,
    parse_address,
    trusted_proxy_of,
)
from pippin.store.db import transaction
from pippin.store.models import AdminRole, AuditEvent
from tests.actors import TEST_ACTOR
from tests.servers import build_server, resources_of

PROXY = "10.0.0.5"
TRUSTED = (ipaddress.ip_network("10.0.0.5/32"), ipaddress.ip_network("192.168.0.0/24"), ipaddress.ip_network("::1"))


def _echo(request: Request) -> JSONResponse:
    body = {"client": client_address(request), "https": came_over_https(request), "proxy": trusted_proxy_of(request)}
    return JSONResponse(body)


def _client(peer: str, trusted: tuple[Any, ...] = TRUSTED) -> TestClient:
    app = TrustedProxyHeaders(Starlette(routes=[Route("/", _echo)]), trusted=trusted)
    return TestClient(app, client=(peer, 4711))


def _seen(peer: str, headers: dict[str, str], trusted: tuple[Any, ...] = TRUSTED) -> dict[str, Any]:
    body: dict[str, Any] = _client(peer, trusted).get("/", headers=headers).json()
    body.pop("proxy")
    return body


def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    assert _seen("198.51.100.20", forged) == {"client": "198.51.100.20", "https": False}


def test_the_trusted_proxy_is_named_only_when_the_peer_is_one() -> None:
    assert _client(PROXY).get("/").json()["proxy"] == PROXY
    assert _client("::ffff:10.0.0.5").get("/").json()["proxy"] == PROXY
    assert _client("198.51.100.20").get("/", headers={"X-Forwarded-For": PROXY}).json()["proxy"] is None


def test_loopback_is_not_trusted_unless_named() -> None:
    forged = {"X-Forwarded-For": "203.0.113.9"}
    assert _seen("127.0.0.1", forged)["client"] == "127.0.0.1"
    assert _seen("127.0.0.1", forged, trusted=())["client"] == "127.0.0.1"


def test_a_trusted_proxy_names_the_client_and_the_scheme() -> None:
    seen = _seen(PROXY, {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
    assert seen == {"client": "203.0.113.9", "https": True}


def test_the_client_is_the_first_untrusted_hop_from_the_right() -> None:
    # The client claims to be 1.2.3.4; the outer proxy (192.168.0.7) saw 203.0.113.9; the inner one saw the outer.
    chain = {"X-Forwarded-For": "1.2.3.4, 203.0.113.9, 192.168.0.7"}
    assert _seen(PROXY, chain)["client"] == "203.0.113.9"


def test_a_chain_of_trusted_proxies_only_ends_at_its_leftmost_address() -> None:
    assert _seen(PROXY, {"X-Forwarded-For": "192.168.0.8, 192.168.0.7"})["client"] == "192.168.0.8"


@pytest.mark.parametrize(
    "forwarded",
    ["not-an-address", "<script>", "203.0.113.9\x00", "", " , ", "999.1.1.1", "unknown"],
)
def test_a_malformed_forwarded_for_records_the_nearest_real_address(forwarded: str) -> None:
    assert _seen(PROXY, {"X-Forwarded-For": forwarded})["client"] == PROXY
    assert _seen(PROXY, {"X-Forwarded-For": f"203.0.113.9, {forwarded}"})["client"] == PROXY


def test_ports_brackets_and_mapped_addresses_are_understood() -> None:
    assert _seen(PROXY, {"X-Forwarded-For": "203.0.113.9:5123"})["client"] == "203.0.113.9"
    assert _seen(PROXY, {"X-Forwarded-For": "[2001:db8::1]:443"})["client"] == "2001:db8::1"
    assert _seen("::ffff:10.0.0.5", {"X-Forwarded-For": "203.0.113.9"})["client"] == "203.0.113.9"
    assert parse_address("::ffff:203.0.113.9") == ipaddress.ip_address("203.0.113.9")


@pytest.mark.parametrize(
    ("proto", "https"), [("https", True), ("HTTPS", True), ("http", False), ("https, http", False)]
)
def test_the_nearest_proxys_scheme_counts(proto: str, https: bool) -> None:
    assert _seen(PROXY, {"X-Forwarded-Proto": proto})["https"] is https


@pytest.mark.parametrize("proto", ["ftp", "javascript", "", "https\x00"])
def test_an_unknown_scheme_is_ignored(proto: str) -> None:
    assert _seen(PROXY, {"X-Forwarded-Proto": proto})["https"] is False


@pytest.fixture
def proxied(settings: Settings) -> Iterator[Starlette]:
    server = build_server(settings.model_copy(update={"trusted_proxies": TRUSTED}))
    with transaction(resources_of(server).session_factory) as session:
        user_service.create_user(
            session, email="ann@example.com", password="correct horse battery", role=AdminRole.admin, actor=TEST_ACTOR
        )
    yield server
    resources_of(server).engine.dispose()


def _sign_in(server: Starlette, peer: str, headers: dict[str, str]) -> tuple[Any, str]:
    """Sign in over plain HTTP from ``peer``; the sign-in form's cookie is sent back by hand, since a client
    speaking HTTP keeps a Secure cookie to itself where a browser behind the HTTPS proxy would send it."""
    with TestClient(server, client=(peer, 4711), follow_redirects=False) as web:
        form = web.get("/console/sign-in", headers=headers)
        token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        web.cookies.clear()
        data = {"email": "ann@example.com", "password": "correct horse battery", "csrf_token": token}
        answer = web.post("/console/sign-in", data=data, headers={**headers, "Cookie": f"pippin_sign_in={token}"})
        return answer, form.headers["set-cookie"]


def _sources(server: Starlette) -> list[str | None]:
    with transaction(resources_of(server).session_factory) as session:
        return list(session.scalars(select(AuditEvent.source).where(AuditEvent.action == "admin.sign_in")))


def test_the_audit_log_records_the_forwarded_client_only_through_a_trusted_proxy(proxied: Starlette) -> None:
    forged = {"X-Forwarded-For": "203.0.113.66"}
    assert _sign_in(proxied, "198.51.100.20", forged)[0].status_code == 303
    assert _sign_in(proxied, PROXY, {"X-Forwarded-For": "203.0.113.9"})[0].status_code == 303
    assert _sources(proxied) == ["198.51.100.20", "203.0.113.9"]


def test_cookies_are_secure_when_a_trusted_proxy_says_https(proxied: Starlette) -> None:
    answer, form_cookie = _sign_in(proxied, PROXY, {"X-Forwarded-Proto": "https"})
    assert answer.status_code == 303
    assert "secure" in answer.headers["set-cookie"].lower() and "secure" in form_cookie.lower()
    untrusted, untrusted_form_cookie = _sign_in(proxied, "198.51.100.20", {"X-Forwarded-Proto": "https"})
    assert untrusted.status_code == 303
    assert "secure" not in untrusted.headers["set-cookie"].lower() and "secure" not in untrusted_form_cookie.lower()
