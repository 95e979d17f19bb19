"""Webhook events are recorded in the caller's transaction, only when a URL is set, sealed, in nanomdm's shape."""

from __future__ import annotations

import base64
import json
import plistlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.errors import ConfigurationError
from pippin.mdm.webhooks import created_at_text, record_checkin_event, record_command_answer_event
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import WebhookEvent, WebhookEventStatus

NOW = datetime(2026, 12, 3, 8, 0, 0, 123456, tzinfo=UTC)
UDID = "00008030-001A2B3C4D5E6F70"
TOPIC = "com.apple.mgmt.External.5e3f2c1a-8d4b-4f0e-9a7c-2b1d6e8f9a0b"
UNLOCK_TOKEN = b"unlock-token-secret-bytes"
TOKEN_UPDATE = plistlib.dumps(
    {"MessageType": "TokenUpdate", "UDID": UDID, "Topic": TOPIC, "Token": b"\x01" * 32, "PushMagic": "MAGIC",
     "UnlockToken": UNLOCK_TOKEN}
)  # fmt: skip
ANSWER = plistlib.dumps({"UDID": UDID, "Status": "Acknowledged", "CommandUUID": "76eda240-5488-4989-8339-f2ae160113c4"})


@pytest.fixture
def hooked(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_url": "http://127.0.0.1:9/hooks"})


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    return SecretBox.from_settings(settings)


def _events(session_factory: SessionFactory) -> list[WebhookEvent]:
    with transaction(session_factory) as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def _body(event: WebhookEvent, box: SecretBox) -> dict[str, object]:
    document = json.loads(box.decrypt(event.body_encrypted))
    assert isinstance(document, dict)
    return document


def _token_update(session: Session, settings: Settings, box: SecretBox | None) -> None:
    record_checkin_event(
        session, settings=settings, message_type="TokenUpdate", udid=UDID, topic=TOPIC, raw=TOKEN_UPDATE, now=NOW,
        box=box,
    )  # fmt: skip


def test_nothing_is_recorded_without_a_webhook_url(session_factory: SessionFactory, settings: Settings) -> None:
    assert settings.webhook_url is None
    with transaction(session_factory) as session:
        _token_update(session, settings, SecretBox.from_settings(settings))
        record_command_answer_event(
            session, settings=settings, udid=UDID, topic=TOPIC, command_uuid="c-1", status="Acknowledged",
            raw=ANSWER, now=NOW,
        )  # fmt: skip
    assert _events(session_factory) == []


def test_a_check_in_is_recorded_sealed_in_nanomdms_shape(
    session_factory: SessionFactory, hooked: Settings, box: SecretBox
) -> None:
    with transaction(session_factory) as session:
        _token_update(session, hooked, box)
    [event] = _events(session_factory)
    assert (event.topic, event.udid, event.status, event.attempts) == (
        "mdm.TokenUpdate", UDID, WebhookEventStatus.pending, 0,
    )  # fmt: skip
    assert event.next_attempt_at == event.created_at == NOW
    # The raw message holds the UnlockToken: nothing of it is readable in the database.
    assert UNLOCK_TOKEN not in event.body_encrypted and base64.b64encode(TOKEN_UPDATE) not in event.body_encrypted
    body = _body(event, box)
    assert list(body) == ["topic", "event_id", "created_at", "checkin_event"]
    assert body["topic"] == "mdm.TokenUpdate" and body["event_id"] == event.event_id
    assert body["created_at"] == "2026-12-03T08:00:00.123456Z"
    assert body["checkin_event"] == {"udid": UDID, "raw_payload": base64.b64encode(TOKEN_UPDATE).decode()}


def test_a_command_answer_is_an_acknowledge_event(
    session_factory: SessionFactory, hooked: Settings, box: SecretBox
) -> None:
    with transaction(session_factory) as session:
        record_command_answer_event(
            session, settings=hooked, udid=UDID, topic=TOPIC, command_uuid="76eda240-5488-4989-8339-f2ae160113c4",
            status="Acknowledged", raw=ANSWER, now=NOW, box=box,
        )  # fmt: skip
        record_command_answer_event(
            session, settings=hooked, udid=UDID, topic=TOPIC, command_uuid="", status="Idle", raw=b"<idle/>",
            now=NOW, box=box,
        )  # fmt: skip
    answered, idle = (_body(event, box) for event in _events(session_factory))
    assert answered["topic"] == "mdm.Connect"
    assert answered["acknowledge_event"] == {
        "udid": UDID,
        "status": "Acknowledged",
        "command_uuid": "76eda240-5488-4989-8339-f2ae160113c4",
        "raw_payload": base64.b64encode(ANSWER).decode(),
    }
    # An Idle report has no CommandUUID, and nanomdm then sends none.
    assert idle["acknowledge_event"] == {"udid": UDID, "status": "Idle", "raw_payload": "PGlkbGUvPg=="}


def test_the_event_is_part_of_the_callers_transaction(
    session_factory: SessionFactory, hooked: Settings, box: SecretBox
) -> None:
    with pytest.raises(RuntimeError), transaction(session_factory) as session:
        _token_update(session, hooked, box)
        raise RuntimeError("the check-in failed after the event was added")
    assert _events(session_factory) == []


def test_each_event_has_its_own_id(session_factory: SessionFactory, hooked: Settings, box: SecretBox) -> None:
    with transaction(session_factory) as session:
        for _ in range(3):
            _token_update(session, hooked, box)
    with transaction(session_factory) as session:
        assert session.scalar(select(func.count(func.distinct(WebhookEvent.event_id)))) == 3


@pytest.mark.parametrize(
    ("message_type", "status", "command_uuid"),
    [("NoSuchMessage", None, None), (None, "", "c"), (None, "x" * 33, "c"), (None, "Acknowledged", "\n")],
)
def test_what_apple_never_sends_is_refused(
    session_factory: SessionFactory,
    hooked: Settings,
    box: SecretBox,
    message_type: str | None,
    status: str | None,
    command_uuid: str | None,
) -> None:
    with pytest.raises(ValueError), transaction(session_factory) as session:
        if message_type is not None:
            record_checkin_event(
                session, settings=hooked, message_type=message_type, udid=UDID, topic=None, raw=b"", now=NOW, box=box
            )
        else:
            assert status is not None and command_uuid is not None
            record_command_answer_event(
                session, settings=hooked, udid=UDID, topic=None, command_uuid=command_uuid, status=status, raw=b"",
                now=NOW, box=box,
            )  # fmt: skip
    assert _events(session_factory) == []


def test_an_event_without_the_master_key_is_refused(session_factory: SessionFactory, hooked: Settings) -> None:
    with pytest.raises(ConfigurationError), transaction(session_factory) as session:
        _token_update(session, hooked, None)


def test_created_at_is_rfc_3339_in_utc() -> None:
    assert created_at_text(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
