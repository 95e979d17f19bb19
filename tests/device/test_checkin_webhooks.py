"""Accepted check-ins become nanomdm webhook events carrying the device's plist as it was sent; refused ones and
servers without PIPPIN_WEBHOOK_URL record none."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from pippin.config import Settings
from pippin.mdm.webhook_delivery import deliver_due_events
from pippin.store.models import WebhookEvent
from tests.device.conftest import DeviceServer, build_device_server
from tests.device.test_checkin import UDID, capture, commandment, message
from tests.mdm.webhook_receiver import Receiver, receiving
from tests.servers import resources_of


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def port(receiver: Receiver) -> Iterator[int]:
    with receiving(receiver) as bound:
        yield bound


def _server(settings: Settings) -> Iterator[DeviceServer]:
    # The job runner is not started (no lifespan): the test posts the events itself, on its own clock.
    built = build_device_server(settings)
    yield built
    resources_of(built.client.app).engine.dispose()  # type: ignore[arg-type]


@pytest.fixture
def hooked(settings: Settings, port: int) -> Iterator[DeviceServer]:
    yield from _server(settings.model_copy(update={"webhook_url": f"http://127.0.0.1:{port}/mdm-events"}))


@pytest.fixture
def plain(settings: Settings) -> Iterator[DeviceServer]:
    yield from _server(settings)


def _count(devices: DeviceServer) -> int:
    with devices.session() as session:
        return session.scalar(select(func.count()).select_from(WebhookEvent)) or 0


def _check_in(devices: DeviceServer) -> list[bytes]:
    identity = devices.identities.issue()
    bodies = [capture("Authenticate.1.plist"), capture("TokenUpdate.1.plist"), commandment("CheckOut_iOS-11.3.1.xml")]
    for body in bodies:
        assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 200
    return bodies


def test_accepted_check_ins_are_posted_as_nanomdm_events_with_their_raw_plists(
    hooked: DeviceServer, receiver: Receiver
) -> None:
    bodies = _check_in(hooked)
    resources = resources_of(hooked.client.app)  # type: ignore[arg-type]
    report = deliver_due_events(
        resources.session_factory, settings=hooked.settings, box=resources.secret_box, clock=hooked.clock,
        rng=random.Random(1),
    )  # fmt: skip
    assert report.delivered == 3
    events = [received.json() for received in receiver.received]
    assert [event["topic"] for event in events] == ["mdm.Authenticate", "mdm.TokenUpdate", "mdm.CheckOut"]
    assert [base64.b64decode(event["checkin_event"]["raw_payload"]) for event in events] == bodies
    assert {event["checkin_event"]["udid"] for event in events} == {UDID}


def test_a_refused_check_in_records_no_event(hooked: DeviceServer) -> None:
    identity = hooked.identities.issue()
    body = message("TokenUpdate", Token=b"\x01" * 32, PushMagic="M")  # no Authenticate before it
    assert hooked.put("checkin", body, signature=identity.sign(body)).status_code == 400
    body = message("GetToken")
    assert hooked.put("checkin", body, signature=identity.sign(body)).status_code == 400
    assert _count(hooked) == 0


def test_without_a_webhook_url_no_event_is_recorded(plain: DeviceServer) -> None:
    _check_in(plain)
    assert _count(plain) == 0
