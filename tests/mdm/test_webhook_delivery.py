"""Webhook delivery against a real HTTP receiver: nanomdm's JSON, the HMAC signature, retries while the receiver is
away, at-least-once after a crash, claims two deliverers share, the maximum age and pruning; on both databases."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import plistlib
import random
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.logs import TextFormatter
from pippin.mdm.webhook_claims import claim_due
from pippin.mdm.webhook_delivery import (
    DeliveryReport,
    claim_lease,
    deliver_due_events,
    open_http_poster,
    prune_finished_events,
)
from pippin.mdm.webhook_poster import PostResult, WebhookPoster
from pippin.mdm.webhooks import record_checkin_event
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import WebhookEvent, WebhookEventStatus
from tests.clocks import Clock
from tests.mdm.webhook_receiver import Receiver, receiving

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
SECRET = "webhook-secret-0123456789abcdef"
PASSWORD = "receiver-password-42"
UNLOCK_TOKEN = b"the-unlock-token-\x00\x01"


def udid_of(index: int) -> str:
    return f"0000{index:04d}-000A1B2C3D4E5F60"


def raw_message(udid: str, message_type: str = "TokenUpdate") -> bytes:
    return plistlib.dumps({"MessageType": message_type, "UDID": udid, "UnlockToken": UNLOCK_TOKEN})


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    return SecretBox.from_settings(settings)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def port(receiver: Receiver) -> Iterator[int]:
    with receiving(receiver) as bound:
        yield bound


def hooked(settings: Settings, port: int, **update: object) -> Settings:
    values: dict[str, object] = {
        "webhook_url": f"http://pippin:{PASSWORD}@127.0.0.1:{port}/hooks/mdm",
        "webhook_secret": SECRET,
        **update,
    }
    return settings.model_validate({**settings.model_dump(), **values})


def record(
    factory: SessionFactory, settings: Settings, box: SecretBox, udid: str, *, at: datetime, kind: str = "TokenUpdate"
) -> None:
    with transaction(factory) as session:
        record_checkin_event(
            session, settings=settings, message_type=kind, udid=udid, topic=None, raw=raw_message(udid, kind),
            now=at, box=box,
        )  # fmt: skip


def deliver(
    factory: SessionFactory, settings: Settings, box: SecretBox, clock: Clock, **options: object
) -> DeliveryReport:
    return deliver_due_events(factory, settings=settings, box=box, clock=clock, rng=random.Random(7), **options)  # type: ignore[arg-type]


def rows(factory: SessionFactory) -> list[WebhookEvent]:
    with transaction(factory) as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def test_an_event_is_posted_in_nanomdms_shape_and_signed(
    session_factory: SessionFactory, settings: Settings, box: SecretBox, clock: Clock, receiver: Receiver, port: int
) -> None:
    configured = hooked(settings, port)
    record(session_factory, configured, box, udid_of(1), at=T0)
    report = deliver(session_factory, configured, box, clock)
    assert (report.delivered, report.retried, report.given_up) == (1, 0, 0)
    [got] = receiver.received
    assert got.path == "/hooks/mdm"
    assert got.headers["content-type"] == "application/json; charset=utf-8"
    assert got.headers["authorization"] == "Basic " + base64.b64encode(f"pippin:{PASSWORD}".encode()).decode()
    expected = "sha256=" + hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers["x-pippin-signature"], expected)
    [row] = rows(session_factory)
    assert got.json() == {
        "topic": "mdm.TokenUpdate",
        "event_id": row.event_id,
        "created_at": "2026-12-03T08:00:00.000000Z",
        "checkin_event": {"udid": udid_of(1), "raw_payload": base64.b64encode(raw_message(udid_of(1))).decode()},
    }
    assert (row.status, row.finished_at, row.next_attempt_at, row.claim, row.last_status) == (
        WebhookEventStatus.delivered, T0, None, None, 200,
    )  # fmt: skip
    assert deliver(session_factory, configured, box, clock).delivered == 0  # delivered once


def test_without_a_secret_no_signature_is_sent(
    session_factory: SessionFactory, settings: Settings, box: SecretBox, clock: Clock, receiver: Receiver, port: int
) -> None:
    configured = hooked(settings, port, webhook_secret=None, webhook_url=f"http://127.0.0.1:{port}/")
    record(session_factory, configured, box, udid_of(1), at=T0)
    assert deliver(session_factory, configured, box, clock).delivered == 1
    assert "x-pippin-signature" not in receiver.received[0].headers
    assert "authorization" not in receiver.received[0].headers


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_while_the_receiver_is_down_nothing_is_lost_and_each_event_arrives_once(
    session_factory: SessionFactory, settings: Settings, box: SecretBox, clock: Clock, receiver: Receiver
) -> None:
    port = _free_port()
    configured = hooked(settings, port)
    for index in range(3):
        record(session_factory, configured, box, udid_of(index), at=T0, kind="Authenticate")
    record(session_factory, configured, box, udid_of(0), at=T0, kind="TokenUpdate")
    down = deliver(session_factory, configured, box, clock)
    # One connection refused; the others wait a short pause without counting an attempt.
    assert (down.delivered, down.retried, down.deferred) == (0, 1, 2)
    stored = rows(session_factory)
    assert [row.status for row in stored] == [WebhookEventStatus.pending] * 4
    assert [row.attempts for row in stored] == [1, 0, 0, 0]
    assert stored[0].last_error == "ConnectError" and stored[0].last_status is None
    assert all(row.claim is None for row in stored)
    assert T0 + timedelta(seconds=5) <= stored[0].next_attempt_at <= T0 + timedelta(seconds=10)  # type: ignore[operator]
    clock.advance(minutes=1)
    with receiving(receiver, port):
        up = deliver(session_factory, configured, box, clock)
    assert up.delivered == 4 and up.retried == 0
    assert sorted(receiver.event_ids()) == sorted(row.event_id for row in stored)
    # A device's events arrive in the order they were recorded.
    device_0 = [r.json()["topic"] for r in receiver.received if r.json()["checkin_event"]["udid"] == udid_of(0)]
    assert device_0 == ["mdm.Authenticate", "mdm.TokenUpdate"]
    assert all(row.status is WebhookEventStatus.delivered for row in rows(session_factory))


def test_an_error_status_retries_that_event_while_other_devices_go_on(
    session_factory: SessionFactory, settings: Settings, box: SecretBox, clock: Clock, receiver: Receiver, port: int
) -> None:
    configured = hooked(settings, port)
    record(session_factory, configured, box, udid_of(1), at=T0, kind="Authenticate")
    record(session_factory, configured, box, udid_of(1), at=T0, kind="TokenUpdate")
    record(session_factory, configured, box, udid_of(2), at=T0, kind="Authenticate")
    receiver.answers = [500]
    first = deliver(session_factory, configured, box, clock)
    assert (first.delivered, first.retried) == (1, 1)
    failed, waiting, other = rows(session_factory)
    assert (failed.status, failed.last_status, failed.last_error) == (WebhookEventStatus.pending, 500, "HTTP 500")
    assert waiting.attempts == 0  # device 1's second event waits for its first
    assert other.status is WebhookEventStatus.delivered
    clock.advance(seconds=30)
    assert deliver(session_factory, configured, box, clock).delivered == 2
    assert [r.json()["topic"] for r in receiver.received] == ["mdm.Authenticate"] * 3 + ["mdm.TokenUpdate"]


def test_a_receiver_asking_to_wait_is_given_its_retry_after(
    session_factory: SessionFactory, settings: Settings, box: SecretBox, clock: Clock, port: int
) -> None:
    configured = hooked(settings, port)
    record(session_factory, configured, box, udid_of(1), at=T0)

    class Throttled:
        def post(self, body: bytes) -> PostResult:
            return PostResult(status=429, error="HTTP 429", retry_after=timedelta(minutes=20))

        def close(self) -> None:
            pass

    report = deliver(session_factory, configured, box, clock, open_poster=Throttled)
    assert report.retried == 1
    assert rows(session_factory)[0].next_attempt_at == T0 + timedelta(minutes=20)


def test_an_event_not_accepted_within_the_maximum_age_is_given_up_logged_and_counted(
    session_factory: SessionFactory,
    settings: Settings,
    box: SecretBox,
    clock: Clock,
    receiver: Receiver,
    port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    configured = hooked(settings, port, webhook_max_age=timedelta(hours=2))
    record(session_factory, configured, box, udid_of(1), at=T0)
    receiver.answers = [503] * 100
    given_up = 0
    with caplog.at_level(logging.DEBUG):
        for _ in range(40):
            given_up += deliver(session_factory, configured, box, clock).given_up
            clock.advance(minutes=10)
    assert given_up == 1
    [row] = rows(session_factory)
    assert (row.status, row.next_attempt_at, row.last_status) == (WebhookEventStatus.given_up, None, 503)
    assert row.finished_at is not None and row.finished_at <= T0 + timedelta(hours=2)
    assert 3 <= len(receiver.received) == row.attempts < 40  # backed off, not posted every run
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "given up" in r.getMessage()]
    assert [r.fields["event_id"] for r in warnings] == [row.event_id]  # type: ignore[attr-defined]
    _assert_no_secret(caplog)


def test_an_event_older_than_the_maximum_age_is_given_up_unposted(
    session_factory: SessionFactory, settings: Settings, box: SecretBox, clock: Clock, receiver: Receiver, port: int
) -> None:
    configured = hooked(settings, port)
    record(session_factory, configured, box, udid_of(1), at=T0 - timedelta(days=4))
    assert deliver(session_factory, configured, box, clock).given_up == 1
    assert receiver.received == [] and rows(session_factory)[0].status is WebhookEventStatus.given_up


class CrashAfterPost:
    """Posts for real, then dies before the outcome can be written: a kill -9 between the two."""

    def __init__(self, inner: WebhookPoster) -> None:
        self.inner = inner

    def post(self, body: bytes) -> PostResult:
        self.inner.post(body)
        raise SystemExit("killed after the POST")

    def close(self) -> None:
        self.inner.close()


def test_a_crash_after_the_post_posts_the_event_again_with_the_same_id(
    session_factory: SessionFactory, settings: Settings, box: SecretBox, clock: Clock, receiver: Receiver, port: int
) -> None:
    configured = hooked(settings, port)
    record(session_factory, configured, box, udid_of(1), at=T0)
    real = open_http_poster(configured)
    with pytest.raises(SystemExit):
        deliver(session_factory, configured, box, clock, open_poster=lambda: CrashAfterPost(real()))
    assert len(receiver.received) == 1
    [row] = rows(session_factory)
    assert row.status is WebhookEventStatus.pending and row.claim is not None
    assert deliver(session_factory, configured, box, clock).delivered == 0  # the claim's lease still holds
    clock.advance(seconds=claim_lease(configured).total_seconds() + 1)
    assert deliver(session_factory, configured, box, clock).delivered == 1
    assert receiver.event_ids() == [row.event_id, row.event_id]
    assert receiver.received[0].body == receiver.received[1].body
    assert rows(session_factory)[0].status is WebhookEventStatus.delivered


def test_two_deliverers_claim_disjoint_events(
    session_factory: SessionFactory, settings: Settings, box: SecretBox, port: int
) -> None:
    configured = hooked(settings, port)
    for index in range(40):
        record(session_factory, configured, box, udid_of(index), at=T0)
    start = threading.Barrier(2)
    claimed: list[list[int]] = []

    def claim() -> None:
        start.wait()
        with transaction(session_factory) as session:
            _, events = claim_due(session, now=T0, lease=timedelta(minutes=5), limit=25)
        claimed.append([event.id for event in events])

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first, second = claimed
    assert not set(first) & set(second)
    assert len(first) + len(second) == 40 and max(len(first), len(second)) == 25


def test_two_deliverers_post_every_event_once(
    session_factory: SessionFactory, settings: Settings, box: SecretBox, clock: Clock, receiver: Receiver, port: int
) -> None:
    configured = hooked(settings, port)
    for index in range(30):
        record(session_factory, configured, box, udid_of(index), at=T0, kind="Authenticate")
        record(session_factory, configured, box, udid_of(index), at=T0, kind="TokenUpdate")
    start = threading.Barrier(2)
    reports: list[DeliveryReport] = []

    def run() -> None:
        start.wait()
        reports.append(deliver(session_factory, configured, box, clock, batch=7))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One more pass takes what either left for the other (a device's second event waits for its first).
    reports.append(deliver(session_factory, configured, box, clock))
    ids = receiver.event_ids()
    assert len(ids) == len(set(ids)) == 60 == sum(report.delivered for report in reports)
    for index in range(30):
        topics = [r.json()["topic"] for r in receiver.received if r.json()["checkin_event"]["udid"] == udid_of(index)]
        assert topics == ["mdm.Authenticate", "mdm.TokenUpdate"]


def test_finished_events_are_pruned_after_the_keep_setting(
    session_factory: SessionFactory, settings: Settings, box: SecretBox, clock: Clock, receiver: Receiver, port: int
) -> None:
    configured = hooked(settings, port, webhook_keep_finished=timedelta(hours=1))
    record(session_factory, configured, box, udid_of(1), at=T0)
    record(session_factory, configured, box, udid_of(2), at=T0)
    receiver.answers = [200, 500]
    deliver(session_factory, configured, box, clock)
    clock.advance(minutes=59)
    assert prune_finished_events(session_factory, settings=configured, clock=clock) == 0
    clock.advance(minutes=2)
    assert prune_finished_events(session_factory, settings=configured, clock=clock) == 1
    [left] = rows(session_factory)
    assert left.udid == udid_of(2) and left.status is WebhookEventStatus.pending


def _assert_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    """Every record as Pippin's log formatter writes it (fields included) holds no secret."""
    text = "\n".join(TextFormatter().format(record) for record in caplog.records)
    for secret in (SECRET, PASSWORD, base64.b64encode(UNLOCK_TOKEN).decode(), "raw_payload"):
        assert secret not in text


def test_no_secret_reaches_the_logs(
    session_factory: SessionFactory,
    settings: Settings,
    box: SecretBox,
    clock: Clock,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = _free_port()
    configured = hooked(settings, port, webhook_max_age=timedelta(minutes=1))
    record(session_factory, configured, box, udid_of(1), at=T0)
    record(session_factory, configured, box, udid_of(2), at=T0)
    record(session_factory, configured, box, udid_of(3), at=T0 - timedelta(minutes=2))  # given up at once
    with caplog.at_level(logging.DEBUG):
        deliver(session_factory, configured, box, clock)  # refused: the receiver is down
        with receiving(receiver, port):
            clock.advance(seconds=30)
            deliver(session_factory, configured, box, clock)
            clock.advance(minutes=2)
            deliver(session_factory, configured, box, clock)
    messages = [record.getMessage() for record in caplog.records]
    assert any("given up" in message for message in messages) and "webhook events posted" in messages
    assert [row.status for row in rows(session_factory)] == [WebhookEventStatus.delivered] * 2 + [
        WebhookEventStatus.given_up
    ]
    _assert_no_secret(caplog)
    assert repr(open_http_poster(configured)()) == "HTTPWebhookPoster(url=<hidden>)"
