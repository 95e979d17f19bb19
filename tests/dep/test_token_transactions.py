"""Uploading a token and asking Apple about it hold no transaction while Apple answers, and what they write
afterwards is checked against what they read before (the token may have changed or gone meanwhile).

Apple is the simulator behind a transport that, while each request is on its way, checks that Pippin holds no
database connection (so no transaction) and, on SQLite, that another connection can write at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing

import httpx
import pytest
from sqlalchemy import Engine, delete

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep import token as token_service
from pippin.dep.errors import TermsNotSigned
from pippin.errors import Conflict, NotFound
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import AuditEvent, DEPToken, TokenStatus
from tests.actors import TEST_ACTOR
from tests.dep.test_token_sim import ADMIN, connect, create_server, download_token, keypair
from tests.simulator import RunningSimulator


class WatchingTransport(httpx.BaseTransport):
    """Forwards to the simulator; before each request runs ``check`` (what the database looks like meanwhile)."""

    def __init__(self, check: Callable[[httpx.Request], None]) -> None:
        self.forward = httpx.HTTPTransport()
        self.check = check
        self.seen: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.url.path)
        self.check(request)
        return self.forward.handle_request(request)

    def close(self) -> None:
        self.forward.close()


def _nothing_held(engine: Engine) -> Callable[[httpx.Request], None]:
    def check(_request: httpx.Request) -> None:
        assert engine.pool.checkedout() == 0, "a database connection is held while Apple answers"  # type: ignore[attr-defined]
        if engine.dialect.name == "sqlite":
            assert engine.url.database is not None
            with closing(sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)) as other:
                other.execute("CREATE TABLE IF NOT EXISTS other_writer (n INTEGER)")
                other.execute("INSERT INTO other_writer VALUES (1)")  # "database is locked" if a writer held on

    return check


def _box(settings: Settings) -> SecretBox:
    return SecretBox.from_settings(settings)


@pytest.fixture
def online(settings: Settings, sim: RunningSimulator) -> Settings:
    return settings.model_copy(update={"dep_base_url": sim.base_url, "dep_max_retries": 1, "dep_timeout": 10.0})


def test_upload_holds_no_transaction_while_apple_answers(
    engine: Engine, session_factory: SessionFactory, online: Settings, sim: RunningSimulator
) -> None:
    box = _box(online)
    p7m = download_token(sim, create_server(sim, keypair(session_factory, box)))
    transport = WatchingTransport(_nothing_held(engine))

    result = token_service.upload_token(
        session_factory,
        name="acme",
        p7m=p7m,
        apple_id=ADMIN,
        box=box,
        settings=online,
        transport=transport,
        actor=TEST_ACTOR,
    )
    assert result.token.status == TokenStatus.ok
    assert "/account" in transport.seen
    with read_transaction(session_factory) as session:  # recorded in the transaction that stored the token
        uploads = session.query(AuditEvent).filter(AuditEvent.action == "dep.token.upload").all()
        assert [(event.actor, event.target) for event in uploads] == [(TEST_ACTOR.name, "acme")]


def test_account_check_holds_no_transaction_and_records_the_outcome(
    engine: Engine, session_factory: SessionFactory, online: Settings, sim: RunningSimulator
) -> None:
    box = _box(online)
    connect(session_factory, box, online, sim)
    transport = WatchingTransport(_nothing_held(engine))
    assert sim.portal.post("/portal/terms").status_code == 200
    with pytest.raises(TermsNotSigned):
        token_service.fetch_account(session_factory, name="acme", box=box, settings=online, transport=transport)
    assert transport.seen, "Apple was asked"
    with read_transaction(session_factory) as session:
        assert token_service.get_token(session, name="acme").status == TokenStatus.terms_not_signed


def test_an_upload_whose_token_got_a_new_key_pair_meanwhile_stores_nothing(
    session_factory: SessionFactory, online: Settings, sim: RunningSimulator
) -> None:
    box = _box(online)
    p7m = download_token(sim, create_server(sim, keypair(session_factory, box)))

    def new_key_pair_meanwhile(request: httpx.Request) -> None:
        if request.url.path == "/account":
            with transaction(session_factory) as session:
                token = token_service.get_token(session, name="acme")
                token.pending_private_key_encrypted = token.pending_certificate_pem = None
            keypair(session_factory, box)  # an admin asks for a fresh key pair while Apple answers

    with pytest.raises(Conflict, match="changed while Apple was being asked"):
        token_service.upload_token(
            session_factory,
            name="acme",
            p7m=p7m,
            apple_id=ADMIN,
            box=box,
            settings=online,
            transport=WatchingTransport(new_key_pair_meanwhile),
            actor=TEST_ACTOR,
        )
    with read_transaction(session_factory) as session:
        token = token_service.get_token(session, name="acme")
        assert (token.status, token.credentials_encrypted) == (TokenStatus.awaiting_token, None)


def test_an_account_check_on_a_token_deleted_meanwhile_is_not_found(
    session_factory: SessionFactory, online: Settings, sim: RunningSimulator
) -> None:
    box = _box(online)
    connect(session_factory, box, online, sim)

    def delete_meanwhile(request: httpx.Request) -> None:
        if request.url.path == "/session":
            with transaction(session_factory) as session:
                session.execute(delete(DEPToken))

    with pytest.raises(NotFound, match="deleted while Apple was being asked"):
        token_service.fetch_account(
            session_factory, name="acme", box=box, settings=online, transport=WatchingTransport(delete_meanwhile)
        )


def test_an_account_answer_for_credentials_replaced_meanwhile_is_not_recorded(
    session_factory: SessionFactory, online: Settings, sim: RunningSimulator
) -> None:
    box = _box(online)
    connect(session_factory, box, online, sim)
    assert sim.portal.post("/portal/terms").status_code == 200

    def replaced_meanwhile(request: httpx.Request) -> None:
        if request.url.path == "/session":
            with transaction(session_factory) as session:
                token = token_service.get_token(session, name="acme")
                token.credentials_encrypted = box.encrypt(b'{"consumer_key": "new"}')

    with pytest.raises(TermsNotSigned):
        token_service.fetch_account(
            session_factory, name="acme", box=box, settings=online, transport=WatchingTransport(replaced_meanwhile)
        )
    with read_transaction(session_factory) as session:
        token = token_service.get_token(session, name="acme")
        assert (token.status, token.last_error) == (TokenStatus.ok, None)  # the refusal was about the old one
