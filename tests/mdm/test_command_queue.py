"""The command queue as a service: enqueue (one, idempotent; a batch), its push in the same transaction, order,
listing without secrets, cancel, and the refusals. On SQLite and PostgreSQL, with an injected clock."""

from __future__ import annotations

import plistlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from pippin.admin.audit import Actor, Interface
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.errors import Conflict, InvalidInput, NotFound
from pippin.mdm.command_queue import (
    BULK_BATCH,
    CommandRefused,
    QueuedCommand,
    bulk_batches,
    cancel_command,
    enqueue_bulk,
    enqueue_command,
    list_commands,
)
from pippin.mdm.connect import next_command
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import Command, CommandStatus, EnrollmentStatus, PushDelivery
from tests.push.conftest import T0, enroll, udid_of

ADMIN = Actor(name="ops@example.com", interface=Interface.api, source="192.0.2.7")
INFO = QueuedCommand("DeviceInformation", {"RequestType": "DeviceInformation", "Queries": ["DeviceName"]})
LOCK = QueuedCommand("DeviceLock", {"RequestType": "DeviceLock", "Message": "Lost"}, destructive=True)
WIFI_PASSWORD = b"correct horse battery staple"
PROFILE = QueuedCommand("InstallProfile", {"RequestType": "InstallProfile", "Payload": b"<plist>" + WIFI_PASSWORD})


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    return SecretBox.from_settings(settings)


def queue(session_factory: SessionFactory, box: SecretBox, settings: Settings, **options: object) -> Command:
    with transaction(session_factory) as session:
        options.setdefault("udid", udid_of(0))
        options.setdefault("queued", INFO)
        return enqueue_command(session, box=box, settings=settings, now=T0, actor=ADMIN, **options)  # type: ignore[arg-type]


def commands(session_factory: SessionFactory) -> list[Command]:
    with read_transaction(session_factory) as session:
        return list(session.scalars(select(Command).order_by(Command.id)))


def test_a_queued_command_is_sealed_and_its_push_is_pending_once_committed(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    enroll(session_factory, 1)
    command = queue(session_factory, box, settings, queued=PROFILE)
    (stored,) = commands(session_factory)
    assert (stored.command_uuid, stored.status, stored.request_type, stored.actor) == (
        command.command_uuid, CommandStatus.queued, "InstallProfile", "ops@example.com",
    )  # fmt: skip
    assert WIFI_PASSWORD not in stored.body_encrypted
    assert plistlib.loads(box.decrypt(stored.body_encrypted)) == PROFILE.command
    assert stored.expires_at == T0 + settings.command_expiration
    with read_transaction(session_factory) as session:
        push = session.get(PushDelivery, udid_of(0))
        assert push is not None and push.wanted_at == T0


def test_a_rolled_back_enqueue_leaves_neither_command_nor_push(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    enroll(session_factory, 1)
    with session_factory() as session, session.begin():
        enqueue_command(session, udid=udid_of(0), queued=INFO, box=box, settings=settings, now=T0, actor=None)
        session.rollback()
    assert commands(session_factory) == []
    with read_transaction(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(PushDelivery)) == 0


def test_the_same_command_uuid_queued_twice_is_one_command(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    enroll(session_factory, 2)
    first = queue(session_factory, box, settings, command_uuid="C-1")
    again = queue(session_factory, box, settings, command_uuid="C-1")
    assert again.id == first.id and len(commands(session_factory)) == 1
    with pytest.raises(Conflict, match="other arguments"):
        queue(session_factory, box, settings, command_uuid="C-1", queued=QueuedCommand("DeviceInformation", {
            "RequestType": "DeviceInformation", "Queries": ["OSVersion"],
        }))  # fmt: skip
    with pytest.raises(Conflict, match="another command"):
        queue(session_factory, box, settings, command_uuid="C-1", udid=udid_of(1))
    assert len(commands(session_factory)) == 1


def test_commands_come_out_by_priority_then_age(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    enroll(session_factory, 1)
    low = queue(session_factory, box, settings, command_uuid="low", priority=-5)
    first = queue(session_factory, box, settings, command_uuid="first")
    second = queue(session_factory, box, settings, command_uuid="second")
    urgent = queue(session_factory, box, settings, command_uuid="urgent", queued=LOCK, priority=10)
    order = []
    with transaction(session_factory) as session:
        while (command := next_command(session, udid=udid_of(0), now=T0)) is not None:
            order.append(command.command_uuid)
            command.status = CommandStatus.acknowledged
            session.flush()
    assert order == [urgent.command_uuid, first.command_uuid, second.command_uuid, low.command_uuid]


@pytest.mark.parametrize(
    ("status", "error"),
    [(None, NotFound), (EnrollmentStatus.enrolling, Conflict), (EnrollmentStatus.unenrolled, Conflict)],
)
def test_only_enrolled_devices_get_commands(
    session_factory: SessionFactory,
    box: SecretBox,
    settings: Settings,
    status: EnrollmentStatus | None,
    error: type[Exception],
) -> None:
    if status is not None:
        enroll(session_factory, 1, status=status)
    with pytest.raises(error):
        queue(session_factory, box, settings)
    assert commands(session_factory) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queued": QueuedCommand("DeviceLock", {"RequestType": "DeviceInformation"})}, "RequestType"),
        ({"queued": QueuedCommand("", {"RequestType": ""})}, "RequestType"),
        ({"queued": QueuedCommand("X" * 65, {"RequestType": "X" * 65})}, "RequestType"),
        ({"queued": QueuedCommand("Settings", {"RequestType": "Settings", "Items": [None]})}, "property list"),
        ({"queued": QueuedCommand("Settings", {"RequestType": "Settings", "N": 2**70})}, "property list"),
        ({"queued": QueuedCommand("Settings", {"RequestType": "Settings", 3: "x"})}, "keys"),  # type: ignore[dict-item]
        (
            {"queued": QueuedCommand("InstallProfile", {"RequestType": "InstallProfile", "Payload": b"x" * 2**20})},
            "larger",
        ),
        ({"command_uuid": ""}, "CommandUUID"),
        ({"command_uuid": "é" * 10}, "CommandUUID"),
        ({"command_uuid": "x" * 65}, "CommandUUID"),
        ({"priority": 10**6}, "priority"),
        ({"priority": True}, "priority"),
        ({"expires_in": timedelta(0)}, "waits"),
        ({"expires_in": timedelta(days=10**5)}, "waits"),
    ],
)
def test_a_malformed_command_is_refused_and_nothing_is_queued(
    session_factory: SessionFactory, box: SecretBox, settings: Settings, options: dict[str, object], message: str
) -> None:
    enroll(session_factory, 1)
    with pytest.raises(CommandRefused, match=message):
        queue(session_factory, box, settings, **options)
    assert commands(session_factory) == []
    with read_transaction(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(PushDelivery)) == 0


def test_a_bulk_batch_queues_one_command_per_enrolled_device_and_one_push_each(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    enrolled = enroll(session_factory, 3)
    enrolling = enroll(session_factory, 1, start=3, status=EnrollmentStatus.enrolling)
    no_token = enroll(session_factory, 1, start=4, with_token=False)
    wanted = [*enrolled, enrolled[0], *enrolling, *no_token, "unknown-udid"]
    with transaction(session_factory) as session:
        report = enqueue_bulk(session, udids=wanted, queued=INFO, box=box, settings=settings, now=T0, actor=ADMIN)
    assert sorted(report.queued) == sorted([*enrolled, *no_token])
    assert (report.not_enrolled, report.not_found, report.unreachable) == (enrolling, ["unknown-udid"], no_token)
    stored = commands(session_factory)
    assert sorted(c.udid for c in stored) == sorted(report.queued)
    assert len({c.command_uuid for c in stored}) == len(stored) and {c.bulk_id for c in stored} == {report.bulk_id}
    assert len({c.body_encrypted for c in stored}) == len(stored), "each copy sealed with its own nonce"
    with read_transaction(session_factory) as session:
        pushes = session.scalars(select(PushDelivery.udid).where(PushDelivery.wanted_at.is_not(None))).all()
    assert sorted(pushes) == sorted(enrolled)


def test_bulk_batches_give_each_device_once_and_a_batch_is_bounded(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    udids = [f"U{i}" for i in range(2500)] + ["U0", "U1"]
    batches = list(bulk_batches(udids))
    assert [len(b) for b in batches] == [BULK_BATCH, BULK_BATCH, 500]
    assert [udid for batch in batches for udid in batch] == udids[:2500]
    with transaction(session_factory) as session, pytest.raises(CommandRefused, match="at most"):
        enqueue_bulk(session, udids=udids, queued=INFO, box=box, settings=settings, now=T0, actor=None)


def test_a_listing_shows_status_and_times_newest_first_and_no_secrets(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    enroll(session_factory, 1)
    first = queue(session_factory, box, settings, queued=PROFILE)
    second = queue(session_factory, box, settings)
    with read_transaction(session_factory) as session:
        page = list_commands(session, udid=udid_of(0), box=box, limit=1)
        rest = list_commands(session, udid=udid_of(0), box=box, before_id=second.id)
        with pytest.raises(InvalidInput):
            list_commands(session, udid=udid_of(0), box=box, limit=0)
    assert [v.command_uuid for v in page + rest] == [second.command_uuid, first.command_uuid]
    view = rest[0]
    assert (view.status, view.request_type, view.response, view.created_at) == (
        CommandStatus.queued, "InstallProfile", None, T0,
    )  # fmt: skip
    assert WIFI_PASSWORD.decode() not in repr(view)


def test_only_a_command_not_yet_sent_or_declined_for_now_can_be_canceled(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    enroll(session_factory, 2)
    waiting = queue(session_factory, box, settings)
    sent = queue(session_factory, box, settings)
    with transaction(session_factory) as session:
        row = session.get(Command, sent.id)
        assert row is not None
        row.status = CommandStatus.sent
    later = T0 + timedelta(minutes=1)
    with transaction(session_factory) as session:
        canceled = cancel_command(session, udid=udid_of(0), command_uuid=waiting.command_uuid, now=later, actor=ADMIN)
        assert (canceled.status, canceled.finished_at) == (CommandStatus.canceled, later)
        with pytest.raises(Conflict, match="sent"):
            cancel_command(session, udid=udid_of(0), command_uuid=sent.command_uuid, now=later, actor=ADMIN)
        with pytest.raises(NotFound):
            cancel_command(session, udid=udid_of(1), command_uuid=waiting.command_uuid, now=later, actor=ADMIN)
    with transaction(session_factory) as session:
        assert next_command(session, udid=udid_of(0), now=later).command_uuid == sent.command_uuid  # type: ignore[union-attr]
