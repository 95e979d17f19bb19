"""The sign-in page as a guesser meets it: one page for unknown and known accounts, 429 with Retry-After while
paused, and a flood of sign-ins refused at once (503) while the API keeps answering."""

from __future__ import annotations

import ipaddress
import re
import threading

import httpx
from fastapi.testclient import TestClient
from starlette.applications import Starlette

from pippin.admin import api_tokens
from pippin.admin import sign_in_throttle as throttle
from pippin.admin import users as user_service
from pippin.admin.passwords import PasswordWork
from pippin.config import Settings
from pippin.store.db import transaction
from tests.actors import TEST_ACTOR
from tests.admin.hashing import HeldPasswords
from tests.console.conftest import PASSWORD, csrf_of, sign_in_with
from tests.servers import build_server, cheap_argon2, resources_of, serve_in_thread

_TYPED = re.compile(r'(name="email"[^>]* value=")[^"]*(")')
_TOKEN = re.compile(r'(name="csrf_token" value=")[^"]*(")')


def _page(answer: object) -> tuple[int, str | None, str]:
    """Status, Retry-After and the page with what differs per request (the address typed, the form's token)
    blanked out."""
    status, headers, text = answer.status_code, answer.headers, answer.text  # type: ignore[attr-defined]
    return status, headers.get("retry-after"), _TOKEN.sub(r"\1\2", _TYPED.sub(r"\1\2", text))


def test_unknown_and_known_accounts_get_the_same_pages_wrong_and_paused(anonymous: TestClient, admins: None) -> None:
    pages = {}
    for account in ("ann@example.com", "nobody@example.com"):
        wrong = [sign_in_with(anonymous, account, "wrong password!") for _ in range(throttle.ACCOUNT_ADDRESS_LIMIT)]
        pages[account] = (_page(wrong[0]), _page(sign_in_with(anonymous, account, PASSWORD)))
    assert pages["ann@example.com"] == pages["nobody@example.com"]
    (wrong_status, wrong_wait, _), (paused_status, paused_wait, paused_page) = pages["ann@example.com"]
    assert (wrong_status, wrong_wait) == (400, None)
    assert (paused_status, paused_wait) == (429, str(int(throttle.BLOCK.total_seconds())))
    assert "Too many sign-in attempts" in paused_page


def test_a_flood_of_sign_ins_is_refused_at_once_while_the_api_answers(settings: Settings) -> None:
    held = HeldPasswords(cheap_argon2())
    work = PasswordWork(held, at_once=1, waiting=1, per_client=10)
    server = build_server(settings, password_work=work)
    with transaction(resources_of(server).session_factory) as session:
        user_service.create_user(session, email="ann@example.com", password=PASSWORD, actor=TEST_ACTOR)
        _, token = api_tokens.create_api_token(session, name="ops", actor=TEST_ACTOR)
    with serve_in_thread(server) as base_url:
        answers: list[int] = []

        def sign_in() -> None:
            with httpx.Client(base_url=base_url) as browser:
                form = browser.get("/console/sign-in")
                data = {"email": "ann@example.com", "password": PASSWORD, "csrf_token": csrf_of(form.text)}
                answers.append(browser.post("/console/sign-in", data=data).status_code)

        in_flight = [threading.Thread(target=sign_in) for _ in range(work.at_once + work.waiting)]
        try:
            for thread in in_flight:
                thread.start()
            for _ in range(1000):  # poll the state (bounded) until both are inside: no timing is assumed
                if work.admitted_now == len(in_flight) and held.running == work.at_once:
                    break
                threading.Event().wait(0.01)
            assert work.admitted_now == len(in_flight) and held.running == work.at_once
            with httpx.Client(base_url=base_url) as browser:
                form = browser.get("/console/sign-in")
                data = {"email": "ann@example.com", "password": PASSWORD, "csrf_token": csrf_of(form.text)}
                refused = browser.post("/console/sign-in", data=data)
                api = browser.get("/api/v1/dep/tokens", headers={"Authorization": f"Bearer {token}"})
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert "busy checking other sign-ins" in refused.text
            assert api.status_code == 200, "the API answers while every hashing turn is taken"
        finally:
            held.release.set()
            for thread in in_flight:
                thread.join(timeout=30)
    assert answers == [303, 303], "the sign-ins in flight went through once released"
    assert held.verified == 2
    resources_of(server).engine.dispose()


def _attempt(server: Starlette, *, peer: str, forwarded_for: str, password: str) -> int:
    with TestClient(server, client=(peer, 4711), follow_redirects=False) as web:
        headers = {"X-Forwarded-For": forwarded_for}
        form = web.get("/console/sign-in", headers=headers)
        data = {"email": "ann@example.com", "password": password, "csrf_token": csrf_of(form.text)}
        return web.post("/console/sign-in", data=data, headers=headers).status_code


def test_the_throttle_counts_the_address_a_trusted_proxy_forwards_and_never_a_forged_one(settings: Settings) -> None:
    proxy = "10.0.0.5"
    server = build_server(settings.model_copy(update={"trusted_proxies": (ipaddress.ip_network(proxy),)}))
    with transaction(resources_of(server).session_factory) as session:
        user_service.create_user(session, email="ann@example.com", password=PASSWORD, actor=TEST_ACTOR)
    try:
        # From a peer that is no trusted proxy, a new X-Forwarded-For per guess escapes nothing.
        for n in range(throttle.ACCOUNT_ADDRESS_LIMIT):
            assert _attempt(server, peer="198.51.100.20", forwarded_for=f"203.0.113.{n}", password="wrong!") == 400
        assert _attempt(server, peer="198.51.100.20", forwarded_for="203.0.113.99", password=PASSWORD) == 429
        # Through the proxy, each client it forwards is counted apart: the guesser's pause is not the admin's.
        for _ in range(throttle.ACCOUNT_ADDRESS_LIMIT):
            assert _attempt(server, peer=proxy, forwarded_for="203.0.113.66", password="wrong!") == 400
        assert _attempt(server, peer=proxy, forwarded_for="203.0.113.66", password=PASSWORD) == 429
        assert _attempt(server, peer=proxy, forwarded_for="203.0.113.9", password=PASSWORD) == 303
    finally:
        resources_of(server).engine.dispose()
