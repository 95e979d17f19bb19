"""Admins' commands as use cases (``mdm/command_sending.py``), on SQLite and PostgreSQL: found by serial number,
built by the catalog, queued with their push, audited, and refused whole when anything is wrong."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from pippin.admin.audit import Actor, Interface
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.errors import Conflict, InvalidInput, NotFound
from pippin.inventory.schemas import DeviceFilters
from pippin.inventory.state import DeviceState
from pippin.mdm import command_sending
from pippin.mdm.command_catalog import CommandRejected
from pippin.mdm.command_targets import DeviceNotEnrolled
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import AuditEvent, Command, CommandStatus, EnrollmentStatus, PushDelivery
from tests.clocks import Clock
from tests.mdm.command_fleet import NOW, acme_token, enrolled_device

ANN = Actor(name="ann@example.com", interface=Interface.console, source="192.0.2.1")


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    return SecretBox.from_settings(settings)


def _send(session: Session, box: SecretBox, settings: Settings, serial: str, kind: str, **payload: Any) -> Any:
    return command_sending.send_command(
        session, serial=serial, request_type=kind, payload=payload, box=box, settings=settings, now=NOW, actor=ANN
    )


def _count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_command_is_queued_for_the_device_of_a_serial_with_its_push_and_audit(
    session: Session, box: SecretBox, settings: Settings
) -> None:
    udid = enrolled_device(session, "C01")
    queued = _send(session, box, settings, "C01", "DeviceLock", Message="Lost phone", PhoneNumber="+46 8 123")
    assert (queued.udid, queued.status, queued.request_type) == (udid, CommandStatus.queued, "DeviceLock")
    command = session.scalars(select(Command)).one()
    assert command.command_uuid == queued.command_uuid and command.actor == ANN.name
    assert session.get(PushDelivery, udid) is not None and session.get(PushDelivery, udid).wanted_at is not None
    event = session.scalars(select(AuditEvent)).one()
    assert (event.action, event.actor, event.target) == ("command.send", ANN.name, "C01")
    assert event.detail == {"request_type": "DeviceLock", "command_uuid": queued.command_uuid, "destructive": True}


def test_a_device_enrolled_without_a_dep_record_is_found_by_its_serial(
    session: Session, box: SecretBox, settings: Settings
) -> None:
    udid = enrolled_device(session, "M01", dep=False)
    assert _send(session, box, settings, "M01", "DeviceInformation").udid == udid
    views = command_sending.list_device_commands(session, serial="M01", box=box)
    assert [(view.request_type, view.status) for view in views] == [("DeviceInformation", CommandStatus.queued)]


@pytest.mark.parametrize("status", [EnrollmentStatus.enrolling, EnrollmentStatus.unenrolled, EnrollmentStatus.failed])
def test_a_device_that_is_not_enrolled_gets_no_command(
    session: Session, box: SecretBox, settings: Settings, status: EnrollmentStatus
) -> None:
    enrolled_device(session, "C02", status=status)
    with pytest.raises(DeviceNotEnrolled, match="not enrolled"):
        _send(session, box, settings, "C02", "DeviceInformation")
    assert _count(session, Command) == 0 and _count(session, AuditEvent) == 0


def test_an_unknown_serial_and_a_refused_command_change_nothing(
    session: Session, box: SecretBox, settings: Settings
) -> None:
    enrolled_device(session, "C03")
    with pytest.raises(NotFound, match="'NOPE'"):
        _send(session, box, settings, "NOPE", "DeviceInformation")
    with pytest.raises(CommandRejected):
        _send(session, box, settings, "C03", "MakeCoffee")
    with pytest.raises(CommandRejected):
        _send(session, box, settings, "C03", "DeviceLock", Message=42)
    with pytest.raises(InvalidInput, match="serial number"):
        _send(session, box, settings, "C\x1b03", "DeviceInformation")
    assert _count(session, Command) == 0 and _count(session, AuditEvent) == 0


def test_clear_passcode_carries_the_unlock_token_the_device_gave(
    session: Session, box: SecretBox, settings: Settings
) -> None:
    enrolled_device(session, "C04", unlock_token=box.encrypt(b"unlock-token-bytes"))
    enrolled_device(session, "C05")
    queued = _send(session, box, settings, "C04", "ClearPasscode")
    assert queued.request_type == "ClearPasscode"
    with pytest.raises(InvalidInput, match="unlock token"):
        _send(session, box, settings, "C05", "ClearPasscode")


def test_a_queued_command_is_canceled_once_and_audited(session: Session, box: SecretBox, settings: Settings) -> None:
    enrolled_device(session, "C06")
    queued = _send(session, box, settings, "C06", "ProfileList")
    canceled = command_sending.cancel_command(
        session, serial="C06", command_uuid=queued.command_uuid, box=box, now=NOW, actor=ANN
    )
    assert canceled.status is CommandStatus.canceled and canceled.finished_at == NOW
    actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions == ["command.send", "command.cancel"]
    with pytest.raises(Conflict, match="canceled"):
        command_sending.cancel_command(
            session, serial="C06", command_uuid=queued.command_uuid, box=box, now=NOW, actor=ANN
        )
    with pytest.raises(NotFound):
        command_sending.cancel_command(session, serial="C06", command_uuid="NOPE", box=box, now=NOW, actor=ANN)


def _fleet(session_factory: SessionFactory, serials: list[str], **kwargs: Any) -> list[str]:
    with transaction(session_factory) as session:
        return [enrolled_device(session, serial, **kwargs) for serial in serials]


def test_a_bulk_command_commits_one_transaction_per_batch_with_one_bulk_id_and_one_audit_event(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    _fleet(session_factory, [f"B{n}" for n in range(5)])
    seen: list[tuple[int, int]] = []
    result = command_sending.send_bulk(
        session_factory,
        request_type="DeviceInformation",
        payload={},
        serials=["B0", "B1", "B2", "B3", "B4", "B0"],
        box=box,
        settings=settings,
        clock=Clock(NOW),
        actor=ANN,
        batch_size=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (result.devices, result.not_enrolled, result.approval) == (5, 0, None)
    assert seen == [(2, 5), (4, 5), (5, 5)]
    with transaction(session_factory) as session:
        assert set(session.scalars(select(Command.bulk_id))) == {result.bulk_id}
        assert _count(session, Command) == 5
        events = list(session.scalars(select(AuditEvent)))
        assert [(event.action, event.detail["devices"]) for event in events] == [("command.send_bulk", 5)]


def test_a_bulk_command_by_filter_leaves_out_devices_that_are_not_enrolled(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    with transaction(session_factory) as session:
        token = acme_token(session)
        for n in range(3):
            enrolled_device(session, f"F{n}", token=token)
        enrolled_device(session, "F9", token=token, status=EnrollmentStatus.unenrolled)
    result = command_sending.send_bulk(
        session_factory,
        request_type="SecurityInfo",
        payload={},
        filters=DeviceFilters(token="acme"),
        box=box,
        settings=settings,
        clock=Clock(NOW),
        actor=ANN,
    )
    assert (result.devices, result.not_enrolled) == (3, 1)
    only_enrolled = command_sending.send_bulk(
        session_factory,
        request_type="SecurityInfo",
        payload={},
        filters=DeviceFilters(state=DeviceState.enrolled),
        box=box,
        settings=settings,
        clock=Clock(NOW),
        actor=ANN,
    )
    assert (only_enrolled.devices, only_enrolled.not_enrolled) == (3, 0)


def test_a_bulk_command_naming_an_unknown_or_unenrolled_serial_queues_nothing(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    _fleet(session_factory, ["U1", "U2"])
    _fleet(session_factory, ["U3"], status=EnrollmentStatus.unenrolled)
    common: dict[str, Any] = {"box": box, "settings": settings, "clock": Clock(NOW), "actor": ANN}
    with pytest.raises(NotFound, match="'NOPE'"):
        command_sending.send_bulk(
            session_factory, request_type="ProfileList", payload={}, serials=["U1", "NOPE"], **common
        )
    with pytest.raises(DeviceNotEnrolled, match="'U3'"):
        command_sending.send_bulk(session_factory, request_type="ProfileList", payload={}, serials=["U3"], **common)
    with pytest.raises(InvalidInput, match="in bulk"):
        command_sending.send_bulk(session_factory, request_type="ClearPasscode", payload={}, serials=["U1"], **common)
    with pytest.raises(CommandRejected):
        command_sending.send_bulk(
            session_factory, request_type="DeviceLock", payload={"Nope": 1}, serials=["U1"], **common
        )
    with transaction(session_factory) as session:
        assert _count(session, Command) == 0 and _count(session, AuditEvent) == 0


def test_a_bulk_erase_is_not_queued_but_waits_for_approval(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    _fleet(session_factory, ["E1", "E2"])
    result = command_sending.send_bulk(
        session_factory,
        request_type="EraseDevice",
        payload={"PreserveDataPlan": True},
        serials=["E1", "E2"],
        box=box,
        settings=settings,
        clock=Clock(NOW),
        actor=ANN,
    )
    assert result.approval is not None and result.approval.status == "pending" and result.devices == 2
    assert result.bulk_id is None
    with transaction(session_factory) as session:
        assert _count(session, Command) == 0
        assert [event.action for event in session.scalars(select(AuditEvent))] == ["command.send_bulk"]


def test_a_bulk_command_leaves_out_each_device_it_does_not_apply_to_naming_why(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    _fleet(session_factory, ["S1", "S2"], supervised=True)
    _fleet(session_factory, ["N1", "N2", "N3"], supervised=False)
    result = command_sending.send_bulk(
        session_factory,
        request_type="EnableLostMode",
        payload={"Message": "Call IT"},
        serials=["S1", "N1", "S2", "N2", "N3"],
        box=box,
        settings=settings,
        clock=Clock(NOW),
        actor=ANN,
    )
    assert (result.devices, result.not_applicable) == (2, 3)
    assert len(result.reasons) == 1 and "supervised" in result.reasons[0]
    with transaction(session_factory) as session:
        assert _count(session, Command) == 2


class _StopAfter:
    """A progress callback that stops the run after ``batches`` batches, as a killed process would."""

    def __init__(self, batches: int) -> None:
        self.left = batches

    def __call__(self, done: int, total: int) -> None:
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


def test_a_bulk_send_that_stopped_half_way_is_finished_by_its_bulk_id_and_no_device_gets_two(
    session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    serials = [f"R{n}" for n in range(7)]
    _fleet(session_factory, serials)
    bulk_id = "3f2b8e6a-4c1d-4e5f-9a7b-0c1d2e3f4a5b"
    common: dict[str, Any] = {
        "request_type": "DeviceInformation",
        "payload": {},
        "serials": serials,
        "box": box,
        "settings": settings,
        "clock": Clock(NOW),
        "actor": ANN,
        "batch_size": 3,
        "bulk_id": bulk_id,
    }
    with pytest.raises(KeyboardInterrupt):
        command_sending.send_bulk(session_factory, progress=_StopAfter(1), **common)
    with transaction(session_factory) as session:
        assert _count(session, Command) == 3
    finished = command_sending.send_bulk(session_factory, **common)
    assert (finished.devices, finished.already_queued, finished.bulk_id) == (4, 3, bulk_id)
    again = command_sending.send_bulk(session_factory, **common)
    assert (again.devices, again.already_queued) == (0, 7)
    with transaction(session_factory) as session:
        rows = session.execute(select(Command.udid, Command.bulk_id)).all()
        assert len(rows) == 7 and len({udid for udid, _ in rows}) == 7 and {b for _, b in rows} == {bulk_id}


@pytest.mark.parametrize("bulk_id", ["", "not-a-uuid", "3f2b8e6a-4c1d-4e5f-9a7b", "x" * 5000, "3f2b8e6a\x00"])
def test_a_bulk_id_that_is_not_a_uuid_is_refused_and_queues_nothing(
    session_factory: SessionFactory, box: SecretBox, settings: Settings, bulk_id: str
) -> None:
    _fleet(session_factory, ["Q1"])
    with pytest.raises(InvalidInput, match="bulk id is a UUID"):
        command_sending.send_bulk(
            session_factory,
            request_type="DeviceInformation",
            payload={},
            serials=["Q1"],
            box=box,
            settings=settings,
            clock=Clock(NOW),
            actor=ANN,
            bulk_id=bulk_id,
        )
    with transaction(session_factory) as session:
        assert _count(session, Command) == 0 and _count(session, AuditEvent) == 0


def test_a_bulk_batch_of_devices_needing_different_commands_writes_their_push_rows_in_key_order(
    engine: Engine, session_factory: SessionFactory, box: SecretBox, settings: Settings
) -> None:
    """The push job writes a batch's push rows in key order; a bulk batch must too, or the two deadlock on
    PostgreSQL. Supervised and unsupervised devices get commands built apart, and their rows still go in order."""
    _fleet(session_factory, ["S1", "S2"], supervised=True)
    _fleet(session_factory, ["N1"], supervised=False)
    written: list[list[str]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")) and "push_deliveries" in statement:
            rows = parameters if executemany else [parameters]
            for row in rows:
                values = row.values() if isinstance(row, dict) else row
                written.append([value for value in values if isinstance(value, str) and value.startswith("UDID-")])

    event.listen(engine, "before_cursor_execute", record)
    try:
        for moment in (NOW, NOW + timedelta(minutes=1)):  # the first inserts the rows, the second updates them
            result = command_sending.send_bulk(
                session_factory,
                request_type="DeviceInformation",
                payload={},
                serials=["S1", "N1", "S2"],
                box=box,
                settings=settings,
                clock=Clock(moment),
                actor=ANN,
            )
            assert result.devices == 3
    finally:
        event.remove(engine, "before_cursor_execute", record)
    udids = [udid for row in written for udid in row]
    assert udids == ["UDID-N1", "UDID-S1", "UDID-S2"] * 2
