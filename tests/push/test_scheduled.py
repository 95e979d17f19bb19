"""The push domain's periodic jobs, as the server's job runner runs them."""

from __future__ import annotations

from sqlalchemy import Engine

from pippin.config import Settings
from pippin.jobs.periodic import JobRunner
from pippin.push.delivery import request_pushes
from pippin.server.jobs import periodic_jobs
from pippin.server.resources import build_resources
from pippin.store.db import SessionFactory, transaction
from tests.push.conftest import CertificateStore, Clock, ScriptedAPNs, enroll, token_of


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


def test_without_a_certificate_store_pushes_wait(engine: Engine, settings: Settings, apns: ScriptedAPNs) -> None:
    resources = build_resources(settings, engine, apns=apns)
    runner = periodic_jobs(resources)
    runner.run_once("push.send_due")
    assert runner.status["push.send_due"].failures == 0
    assert resources.load_push_identity(None) is None  # type: ignore[arg-type]
