"""Reliable pushes: asked for in the database, claimed, sent after commit, each outcome written and counted.

Runs on SQLite and PostgreSQL with a scripted APNs (``conftest.ScriptedAPNs``) and an injected clock.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, select

from pippin.admin.audit import Actor, AuditAction, Interface
from pippin.config import Settings
from pippin.errors import InvalidInput, NotFound
from pippin.push import delivery as delivery_module
from pippin.push.apns import PushOutcome, classify_response
from pippin.push.claims import claim_due, settle
from pippin.push.delivery import (
    BACKOFF_CAP,
    SendReport,
    backoff,
    claim_lease,
    request_push,
    request_pushes,
    send_due_pushes,
)
from pippin.push.device_status import get_device_push_status
from pippin.push.schemas import TokenState
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import AuditEvent, Enrollment, EnrollmentStatus, PushDelivery, PushResult
from tests.clocks import Clock
from tests.locks import wait_until_a_lock_is_awaited
from tests.push.conftest import T0, CertificateStore, ScriptedAPNs, enroll, token_of, udid_of
from tests.push.identities import push_identity

ADMIN = Actor(name="ops@example.com", interface=Interface.console, source="192.0.2.7")
SYSTEM = Actor(name="pippin", interface=Interface.system)


def request(
    session_factory: SessionFactory, udids: list[str], settings: Settings, clock: Clock, actor: Actor | None = None
):  # type: ignore[no-untyped-def]
    with transaction(session_factory) as session:
        return request_pushes(session, udids=udids, settings=settings, now=clock(), actor=actor)


def send(
    session_factory: SessionFactory,
    apns: ScriptedAPNs,
    certificates: CertificateStore,
    settings: Settings,
    clock: Clock,
    **options: object,
) -> SendReport:
    return send_due_pushes(
        session_factory,
        sender=apns,
        load_identity=certificates.load,
        record_certificate_refusal=certificates.record_refusal,
        settings=settings,
        clock=clock,
        rng=random.Random(7),
        **options,  # type: ignore[arg-type]
    )


def state(session_factory: SessionFactory, udid: str) -> PushDelivery:
    with read_transaction(session_factory) as session:
        row = session.get(PushDelivery, udid)
        assert row is not None
        return row


def test_a_requested_push_is_sent_once_and_counted(
    session_factory: SessionFactory,
    apns: ScriptedAPNs,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
) -> None:
    [udid] = enroll(session_factory, 1)
    report = request(session_factory, [udid], push_settings, clock)
    assert report.requested == [udid]
    assert apns.sent == []  # asking records; only the sender sends

    sent = send(session_factory, apns, certificates, push_settings, clock)
    assert (sent.sent, sent.outcomes) == (1, {PushResult.delivered: 1})
    [(fingerprint, notification)] = apns.sent
    assert fingerprint == certificates.identity.fingerprint  # type: ignore[union-attr]
    assert (notification.token, notification.push_magic) == (token_of(0), "MAGIC-0")
    assert notification.expires_at == T0 + push_settings.push_expiration

    row = state(session_factory, udid)
    assert (row.wanted_at, row.next_attempt_at, row.claim, row.attempts) == (None, None, None, 0)
    assert (row.last_result, row.last_status, row.last_apns_id, row.last_push_at) == (
        PushResult.delivered,
        200,
        f"id-{token_of(0)[-8:]}",
        T0,
    )
    assert (row.pushes, row.delivered) == (1, 1)
    assert send(session_factory, apns, certificates, push_settings, clock).sent == 0
    assert len(apns.sent) == 1


def test_a_push_asked_for_twice_before_it_is_sent_goes_out_once(
    session_factory: SessionFactory,
    apns: ScriptedAPNs,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
) -> None:
    [udid] = enroll(session_factory, 1)
    request(session_factory, [udid], push_settings, clock)
    clock.advance(hours=1)
    request(session_factory, [udid, udid], push_settings, clock)
    assert state(session_factory, udid).expires_at == clock() + push_settings.push_expiration
    send(session_factory, apns, certificates, push_settings, clock)
    assert apns.tokens() == [token_of(0)]


def test_devices_that_cannot_be_pushed_are_reported_and_get_no_pending_push(
    session_factory: SessionFactory, push_settings: Settings, clock: Clock
) -> None:
    [no_token] = enroll(session_factory, 1, with_token=False)
    [gone] = enroll(session_factory, 1, start=1, status=EnrollmentStatus.unenrolled)
    report = request(session_factory, [no_token, gone, "UNKNOWN-UDID"], push_settings, clock)
    assert report.requested == []
    assert sorted(report.not_pushable) == sorted([no_token, gone])
    assert report.not_found == ["UNKNOWN-UDID"]
    with read_transaction(session_factory) as session:
        assert session.scalars(select(PushDelivery)).all() == []
        with pytest.raises(NotFound):
            request_push(session, udid="UNKNOWN-UDID", settings=push_settings)


@pytest.mark.parametrize("udid", ["", "x" * 65, "bad\x1bescape"])
def test_a_malformed_udid_is_refused_and_nothing_changes(
    session_factory: SessionFactory, push_settings: Settings, clock: Clock, udid: str
) -> None:
    with pytest.raises(InvalidInput), transaction(session_factory) as session:
        request_pushes(session, udids=[udid], settings=push_settings, now=clock())


def test_an_admins_request_is_audited_and_pippins_own_is_not(
    session_factory: SessionFactory, push_settings: Settings, clock: Clock
) -> None:
    first, second = enroll(session_factory, 2)
    request(session_factory, [first], push_settings, clock, actor=ADMIN)
    request(session_factory, [second], push_settings, clock, actor=SYSTEM)
    request(session_factory, [second], push_settings, clock)
    with read_transaction(session_factory) as session:
        events = session.scalars(select(AuditEvent)).all()
    assert [(e.action, e.actor, e.target, e.detail["requested"]) for e in events] == [
        (AuditAction.push_send.value, "ops@example.com", first, 1)
    ]


def _answer(status: int, reason: str) -> PushOutcome:
    return classify_response(httpx.Response(status, json={"reason": reason}))


def test_a_throttled_push_waits_with_backoff_and_is_sent_again(
    session_factory: SessionFactory,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
) -> None:
    answers = iter([_answer(429, "TooManyRequests"), _answer(503, "ServiceUnavailable")])
    apns = ScriptedAPNs(lambda token: next(answers, PushOutcome(PushResult.delivered, 200, apns_id="late")))
    [udid] = enroll(session_factory, 1)
    request(session_factory, [udid], push_settings, clock)

    first = send(session_factory, apns, certificates, push_settings, clock)
    assert first.outcomes == {PushResult.retryable: 1}
    row = state(session_factory, udid)
    assert (row.attempts, row.last_result, row.last_reason) == (1, PushResult.retryable, "TooManyRequests")
    assert row.claim is None
    assert row.next_attempt_at is not None
    wait = row.next_attempt_at - T0
    assert timedelta(seconds=15) <= wait <= timedelta(seconds=30)

    clock.now = row.next_attempt_at - timedelta(seconds=1)
    assert send(session_factory, apns, certificates, push_settings, clock).sent == 0  # not due yet

    clock.now = row.next_attempt_at
    send(session_factory, apns, certificates, push_settings, clock)
    row = state(session_factory, udid)
    assert row.attempts == 2 and row.next_attempt_at is not None
    assert row.next_attempt_at - clock() >= timedelta(seconds=30)  # the wait doubled

    clock.now = row.next_attempt_at
    send(session_factory, apns, certificates, push_settings, clock)
    row = state(session_factory, udid)
    assert (row.last_result, row.last_apns_id, row.wanted_at) == (PushResult.delivered, "late", None)
    assert (row.pushes, row.retryable_failures, row.delivered) == (3, 2, 1)
    assert len(apns.sent) == 3


def test_backoff_doubles_with_jitter_up_to_an_hour() -> None:
    rng = random.Random(1)
    waits = [backoff(attempt, rng) for attempt in range(1, 15)]
    assert all(timedelta(seconds=15) * 2 ** min(a - 1, 7) <= w or w >= BACKOFF_CAP / 2 for a, w in enumerate(waits, 1))
    assert max(waits) <= BACKOFF_CAP
    assert len({w.total_seconds() for w in waits}) == len(waits)  # jittered, no two the same


def test_a_push_apns_keeps_refusing_is_given_up_after_its_last_attempt(
    session_factory: SessionFactory,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
) -> None:
    apns = ScriptedAPNs(lambda token: _answer(500, "InternalServerError"))
    [udid] = enroll(session_factory, 1)
    request(session_factory, [udid], push_settings, clock)
    for _ in range(push_settings.push_max_attempts):
        send(session_factory, apns, certificates, push_settings, clock)
        clock.advance(hours=2)
    row = state(session_factory, udid)
    assert len(apns.sent) == push_settings.push_max_attempts
    assert (row.wanted_at, row.next_attempt_at, row.last_result, row.expired) == (None, None, PushResult.expired, 1)
    clock.advance(days=1)
    send(session_factory, apns, certificates, push_settings, clock)
    assert len(apns.sent) == push_settings.push_max_attempts


def test_a_push_is_not_retried_past_its_expiration(
    session_factory: SessionFactory,
    certificates: CertificateStore,
    settings: Settings,
    clock: Clock,
) -> None:
    short = settings.model_copy(update={"push_expiration": timedelta(minutes=1), "push_max_attempts": 50})
    apns = ScriptedAPNs(lambda token: _answer(503, "ServiceUnavailable"))
    [udid] = enroll(session_factory, 1)
    request(session_factory, [udid], short, clock)
    for _ in range(10):
        send(session_factory, apns, certificates, short, clock)
        clock.advance(minutes=5)
    assert len(apns.sent) <= 3  # the doubling waits pass one minute within a few attempts
    assert state(session_factory, udid).last_result is PushResult.expired


@pytest.mark.parametrize("reason", ["BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"])
def test_a_refused_token_is_marked_and_never_pushed_again(
    session_factory: SessionFactory,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
    reason: str,
) -> None:
    apns = ScriptedAPNs(lambda token: _answer(410 if reason == "Unregistered" else 400, reason))
    [udid] = enroll(session_factory, 1)
    request(session_factory, [udid], push_settings, clock)
    send(session_factory, apns, certificates, push_settings, clock)
    row = state(session_factory, udid)
    assert (row.refused_token, row.token_refused_reason, row.token_refused_at) == (token_of(0), reason, T0)
    assert (row.wanted_at, row.token_refusals, row.next_sweep_at) == (None, 1, None)

    clock.advance(days=2)
    again = request(session_factory, [udid], push_settings, clock)
    assert again.not_pushable == [udid]
    send(session_factory, apns, certificates, push_settings, clock)
    assert len(apns.sent) == 1
    with read_transaction(session_factory) as session:
        status = get_device_push_status(session, udid=udid)
    assert (status.token_state, status.token_refused_reason) == (TokenState.refused, reason)

    # A new TokenUpdate brings another token: that one is pushed.
    with transaction(session_factory) as session:
        enrollment = session.get(Enrollment, udid)
        assert enrollment is not None
        enrollment.push_token = token_of(99)
    apns.answer = lambda token: PushOutcome(PushResult.delivered, 200, apns_id="new")
    assert request(session_factory, [udid], push_settings, clock).requested == [udid]
    send(session_factory, apns, certificates, push_settings, clock)
    assert apns.tokens() == [token_of(0), token_of(99)]


def test_a_refused_certificate_is_reported_and_stops_every_push_until_a_new_one(
    session_factory: SessionFactory,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
) -> None:
    apns = ScriptedAPNs(lambda token: _answer(403, "BadCertificate"))
    udids = enroll(session_factory, 3)
    request(session_factory, udids, push_settings, clock)
    refused = certificates.identity
    assert refused is not None

    report = send(session_factory, apns, certificates, push_settings, clock, batch=2)
    assert report.waiting_for_certificate
    assert certificates.refused == {refused.fingerprint: "BadCertificate"}
    assert len(apns.sent) == 2  # the first batch; the next one was never claimed

    clock.advance(hours=1)
    assert send(session_factory, apns, certificates, push_settings, clock).waiting_for_certificate
    assert len(apns.sent) == 2
    for udid in udids[:2]:
        row = state(session_factory, udid)
        assert (row.attempts, row.certificate_refusals, row.last_result) == (0, 1, PushResult.certificate_refused)
        assert row.wanted_at is not None  # still pending

    renewed = push_identity(key_index=2, topic=refused.topic)
    certificates.identity = renewed
    apns.answer = lambda token: PushOutcome(PushResult.delivered, 200, apns_id="ok")
    send(session_factory, apns, certificates, push_settings, clock)
    assert sorted(apns.tokens()[2:]) == sorted(token_of(i) for i in range(3))
    assert {fingerprint for fingerprint, _ in apns.sent[2:]} == {renewed.fingerprint}


def test_a_malformed_request_is_logged_and_not_repeated(
    session_factory: SessionFactory,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
) -> None:
    apns = ScriptedAPNs(lambda token: _answer(400, "BadExpirationDate"))
    [udid] = enroll(session_factory, 1)
    request(session_factory, [udid], push_settings, clock)
    send(session_factory, apns, certificates, push_settings, clock)
    clock.advance(days=1)
    send(session_factory, apns, certificates, push_settings, clock)
    row = state(session_factory, udid)
    assert len(apns.sent) == 1
    assert (row.last_result, row.last_reason, row.request_errors, row.wanted_at) == (
        PushResult.request_error,
        "BadExpirationDate",
        1,
        None,
    )


def test_without_a_certificate_pushes_wait_and_nothing_is_claimed(
    session_factory: SessionFactory, apns: ScriptedAPNs, push_settings: Settings, clock: Clock
) -> None:
    [udid] = enroll(session_factory, 1)
    request(session_factory, [udid], push_settings, clock)
    report = send(session_factory, apns, CertificateStore(None), push_settings, clock)
    assert report.waiting_for_certificate and apns.sent == []
    assert state(session_factory, udid).attempts == 0
    expired = CertificateStore(push_identity(days=-2))
    assert send(session_factory, apns, expired, push_settings, clock).waiting_for_certificate


def test_a_device_unenrolled_after_its_push_was_asked_for_is_dropped_unsent(
    session_factory: SessionFactory,
    apns: ScriptedAPNs,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
) -> None:
    [udid] = enroll(session_factory, 1)
    request(session_factory, [udid], push_settings, clock)
    with transaction(session_factory) as session:
        enrollment = session.get(Enrollment, udid)
        assert enrollment is not None
        enrollment.status = EnrollmentStatus.unenrolled
    report = send(session_factory, apns, certificates, push_settings, clock)
    assert (report.dropped, apns.sent) == (1, [])
    assert state(session_factory, udid).wanted_at is None


def test_a_push_whose_sender_died_after_its_claim_is_sent_once_its_lease_runs_out(
    session_factory: SessionFactory,
    apns: ScriptedAPNs,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
) -> None:
    [udid] = enroll(session_factory, 1)
    request(session_factory, [udid], push_settings, clock)
    lease = claim_lease(push_settings)
    # A sender claims and commits, then dies before APNs answers: no outcome is ever written.
    with transaction(session_factory) as session:
        dead_claim, claimed = claim_due(session, now=clock(), lease=lease, limit=10)
    assert [push.udid for push in claimed] == [udid]

    clock.advance(seconds=lease.total_seconds() - 1)
    assert send(session_factory, apns, certificates, push_settings, clock).sent == 0  # still claimed

    clock.advance(seconds=1)
    assert send(session_factory, apns, certificates, push_settings, clock).outcomes == {PushResult.delivered: 1}
    row = state(session_factory, udid)
    assert (row.last_result, row.wanted_at, row.pushes) == (PushResult.delivered, None, 1)

    # Should the dead sender come back, its claim is gone: it can no longer write over the outcome.
    with transaction(session_factory) as session:
        assert settle(session, dead_claim, [{"b_udid": udid}], {"last_result": PushResult.retryable}) == 0
    assert state(session_factory, udid).last_result is PushResult.delivered


def test_a_sender_dying_at_every_attempt_ends_at_the_last_one(
    session_factory: SessionFactory,
    apns: ScriptedAPNs,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
) -> None:
    [udid] = enroll(session_factory, 1)
    request(session_factory, [udid], push_settings, clock)
    lease = claim_lease(push_settings)
    for _ in range(push_settings.push_max_attempts):
        with transaction(session_factory) as session:
            claim_due(session, now=clock(), lease=lease, limit=10)
        clock.advance(seconds=lease.total_seconds())
    report = send(session_factory, apns, certificates, push_settings, clock)
    assert (report.outcomes, apns.sent) == ({PushResult.expired: 1}, [])
    assert state(session_factory, udid).wanted_at is None


def test_two_senders_never_send_the_same_push(
    session_factory: SessionFactory,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
) -> None:
    udids = enroll(session_factory, 30)
    request(session_factory, udids, push_settings, clock)
    entered = threading.Event()
    release = threading.Event()

    class HeldAPNs(ScriptedAPNs):
        def send_all(self, identity, notifications):  # type: ignore[no-untyped-def]
            entered.set()
            assert release.wait(timeout=60)
            return super().send_all(identity, notifications)

    first, second = HeldAPNs(), ScriptedAPNs()
    worker = threading.Thread(
        target=send, args=(session_factory, first, certificates, push_settings, clock), kwargs={"batch": 20}
    )
    worker.start()
    assert entered.wait(timeout=60)  # the first sender has committed its claim of 20 and is waiting on APNs
    send(session_factory, second, certificates, push_settings, clock, batch=20)
    release.set()
    worker.join(timeout=60)
    sent = first.tokens() + second.tokens()
    assert len(first.sent) == 20 and len(second.sent) == 10
    assert sorted(sent) == sorted(token_of(i) for i in range(30))


def test_racing_senders_send_each_push_exactly_once(
    session_factory: SessionFactory,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
) -> None:
    udids = enroll(session_factory, 60)
    request(session_factory, udids, push_settings, clock)
    apns = ScriptedAPNs()
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(timeout=60)
            send(session_factory, apns, certificates, push_settings, clock, batch=7)
        except BaseException as error:  # reported below
            errors.append(error)

    workers = [threading.Thread(target=run) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []
    assert sorted(apns.tokens()) == sorted(token_of(i) for i in range(60))


def test_each_outcome_is_counted_per_device_and_visible(
    session_factory: SessionFactory,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
) -> None:
    answers = {token_of(0): _answer(503, "ServiceUnavailable")}
    apns = ScriptedAPNs(lambda token: answers.pop(token, PushOutcome(PushResult.delivered, 200, apns_id="A")))
    [udid] = enroll(session_factory, 1)
    request(session_factory, [udid], push_settings, clock)
    send(session_factory, apns, certificates, push_settings, clock)
    with read_transaction(session_factory) as session:
        pending = get_device_push_status(session, udid=udid)
    assert pending.pending and pending.attempts == 1 and pending.last_reason == "ServiceUnavailable"
    assert pending.next_attempt_at is not None
    clock.now = pending.next_attempt_at
    send(session_factory, apns, certificates, push_settings, clock)
    with read_transaction(session_factory) as session:
        status = get_device_push_status(session, udid=udid)
        with pytest.raises(NotFound):
            get_device_push_status(session, udid="NOPE")
    assert status.token_state is TokenState.valid
    assert not status.pending
    assert (status.counts.pushes, status.counts.delivered, status.counts.retryable) == (2, 1, 1)
    assert status.last_result is PushResult.delivered
    assert "MAGIC" not in status.model_dump_json()


def test_a_device_never_pushed_shows_its_token_state(session_factory: SessionFactory) -> None:
    [with_token] = enroll(session_factory, 1)
    [without] = enroll(session_factory, 1, start=1, with_token=False)
    with read_transaction(session_factory) as session:
        assert get_device_push_status(session, udid=with_token).token_state is TokenState.valid
        assert get_device_push_status(session, udid=without).token_state is TokenState.missing
        assert get_device_push_status(session, udid=udid_of(1)).counts.pushes == 0


def test_a_push_asked_for_while_one_is_in_flight_is_sent_again_after_it(
    session_factory: SessionFactory,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
) -> None:
    [udid] = enroll(session_factory, 1)
    request(session_factory, [udid], push_settings, clock)

    class AskedAgainMeanwhile(ScriptedAPNs):
        """While APNs answers the first push, a command is queued and asks for a push."""

        def send_all(self, identity, notifications):  # type: ignore[no-untyped-def]
            if not self.sent:
                clock.advance(seconds=1)
                request(session_factory, [udid], push_settings, clock)
            return super().send_all(identity, notifications)

    apns = AskedAgainMeanwhile()
    send(session_factory, apns, certificates, push_settings, clock)
    row = state(session_factory, udid)
    assert row.wanted_at is not None and row.attempts == 0 and row.delivered == 1
    send(session_factory, apns, certificates, push_settings, clock)
    assert apns.tokens() == [token_of(0), token_of(0)]
    assert state(session_factory, udid).wanted_at is None


def test_a_push_asked_for_while_the_sender_writes_its_outcome_is_not_lost(
    engine: Engine,
    session_factory: SessionFactory,
    certificates: CertificateStore,
    push_settings: Settings,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A command queued while the push job writes the outcome of the device's last push: on PostgreSQL the request
    read the row before that write committed, and wrote over it after, leaving a push wanted that nobody sends."""
    [udid] = enroll(session_factory, 1)
    request(session_factory, [udid], push_settings, clock)
    original_write = delivery_module._write
    requester: list[threading.Thread] = []

    def write_then_race(session, claim, grouped, *, claimed_at, now):  # type: ignore[no-untyped-def]
        original_write(session, claim, grouped, claimed_at=claimed_at, now=now)
        clock.advance(seconds=1)
        thread = threading.Thread(target=request, args=(session_factory, [udid], push_settings, clock))
        thread.start()
        requester.append(thread)
        wait_until_a_lock_is_awaited(engine, "the request for a push")  # then the outcome commits

    monkeypatch.setattr(delivery_module, "_write", write_then_race)
    apns = ScriptedAPNs()
    send(session_factory, apns, certificates, push_settings, clock)
    monkeypatch.setattr(delivery_module, "_write", original_write)
    requester[0].join(30)
    row = state(session_factory, udid)
    assert row.wanted_at is not None and row.next_attempt_at is not None, "the second push is wanted and due"
    send(session_factory, apns, certificates, push_settings, clock)
    assert apns.tokens() == [token_of(0), token_of(0)]
