"""The push domain's periodic jobs, as the server's job runner runs them."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from pippin.config import Settings
from pippin.errors import InvalidInput
from pippin.jobs.periodic import JobRunner
from pippin.push.apns import Notification
from pippin.push.delivery import request_pushes
from pippin.push.device_status import get_device_push_status
from pippin.server.app import create_server
from pippin.server.jobs import periodic_jobs
from pippin.server.resources import build_resources
from pippin.store.db import SessionFactory, transaction
from tests.clocks import Clock
from tests.push.conftest import T0, CertificateStore, ScriptedAPNs, enroll, token_of
from tests.push.identities import push_identity


def test_the_server_runs_the_push_jobs_with_its_injected_apns_and_certificate_store(
    engine: Engine,
    session_factory: SessionFactory,
    settings: Settings,
    apns: ScriptedAPNs,
    certificates: CertificateStore,
    clock: Clock,
) -> None:
    resources = build_resources(
        settings,
        engine,
        apns=apns,
        clock=clock,
        load_push_identity=certificates.load,
        record_push_certificate_refusal=certificates.record_refusal,
    )
    runner: JobRunner = periodic_jobs(resources)
    assert {"push.send_due", "push.sweep_silent"} <= set(runner.status)
    udids = enroll(session_factory, 2)
    with transaction(session_factory) as session:
        request_pushes(session, udids=udids[:1], settings=settings, now=clock())
    runner.run_once("push.send_due")
    assert apns.tokens() == [token_of(0)]
    clock.advance(days=2)
    runner.run_once("push.sweep_silent")
    runner.run_once("push.send_due")
    assert sorted(apns.tokens()) == [token_of(0), token_of(0)]  # the sweep watches only devices pushed or given a token
    assert runner.status["push.send_due"].failures == 0


def test_before_a_push_certificate_is_uploaded_pushes_wait(
    engine: Engine, session_factory: SessionFactory, settings: Settings, apns: ScriptedAPNs
) -> None:
    resources = build_resources(settings, engine, apns=apns)  # the server's own certificate store: empty
    runner = periodic_jobs(resources)
    [udid] = enroll(session_factory, 1)
    with transaction(session_factory) as session:
        request_pushes(session, udids=[udid], settings=settings, now=T0)
    runner.run_once("push.send_due")
    assert runner.status["push.send_due"].failures == 0
    assert apns.sent == []
    with transaction(session_factory) as session:
        assert get_device_push_status(session, udid=udid).pending


def test_the_server_closes_the_apns_client_it_opened_and_leaves_an_injected_one(
    settings: Settings, apns: ScriptedAPNs
) -> None:
    owned = create_server(settings)
    with TestClient(owned):
        pass
    with pytest.raises(InvalidInput):  # closed with the server's lifespan
        owned.state.resources.apns.send(push_identity(), Notification(token_of(1), "M", T0))
    injected = create_server(settings, apns=apns)
    with TestClient(injected):
        pass
    assert injected.state.resources.apns is apns and not apns.closed
