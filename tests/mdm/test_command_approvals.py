"""A bulk erase needs a second admin (``mdm/command_approvals.py``), on SQLite and PostgreSQL: the requester cannot
approve it, an expired request cannot be approved, and an approved one is queued exactly once per device, also
when its queuing stopped half-way and is started again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from pippin.admin.audit import Actor, Interface
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.errors import NotFound
from pippin.mdm import command_approvals, command_sending
from pippin.mdm.command_approvals import ApprovalRefused
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import AuditEvent, Command, CommandApproval, Enrollment, EnrollmentStatus
from tests.clocks import Clock
from tests.mdm.command_fleet import NOW, enrolled_device

ANN = Actor(name="ann@example.com", interface=Interface.console, source="192.0.2.1")
ANN_ELSEWHERE = Actor(name="Ann@Example.com", interface=Interface.api)
BO = Actor(name="bo@example.com", interface=Interface.cli, source="host")


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    return SecretBox.from_settings(settings)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def _request(session_factory: SessionFactory, box: SecretBox, settings: Settings, clock: Clock, count: int) -> int:
    with transaction(session_factory) as session:
        serials = [f"E{n:02}" for n in range(count)]
        for serial in serials:
            enrolled_device(session, serial)
    result = command_sending.send_bulk(
        session_factory,
        request_type="EraseDevice",
        payload={"PreserveDataPlan": True, "DisallowProximitySetup": False},
        serials=serials,
        box=box,
        settings=settings,
        clock=clock,
        actor=ANN,
    )
    assert result.approval is not None
    return result.approval.id


def _queue(session_factory: SessionFactory, box: SecretBox, settings: Settings, clock: Clock, **kw: Any) -> Any:
    return command_approvals.queue_approved(session_factory, box=box, settings=settings, clock=clock, actor=BO, **kw)


def _commands(session_factory: SessionFactory) -> list[tuple[str, str]]:
    with read_transaction(session_factory) as session:
        return [
            (row[0], row[1])
            for row in session.execute(select(Command.udid, Command.request_type).order_by(Command.udid))
        ]


def test_the_requester_cannot_approve_their_own_bulk_erase_from_any_interface(
    session_factory: SessionFactory, box: SecretBox, settings: Settings, clock: Clock
) -> None:
    approval_id = _request(session_factory, box, settings, clock, 2)
    for same in (ANN, ANN_ELSEWHERE):
        with pytest.raises(ApprovalRefused, match="your own"), transaction(session_factory) as session:
            command_approvals.approve(session, approval_id=approval_id, now=clock(), actor=same)
    assert _queue(session_factory, box, settings, clock, approval_id=approval_id).status == "pending"
    assert _commands(session_factory) == []


def test_another_admin_approves_and_every_device_gets_one_erase(
    session_factory: SessionFactory, box: SecretBox, settings: Settings, clock: Clock
) -> None:
    approval_id = _request(session_factory, box, settings, clock, 5)
    clock.advance(hours=1)
    with transaction(session_factory) as session:
        approved = command_approvals.approve(session, approval_id=approval_id, now=clock(), actor=BO)
    assert (approved.status, approved.approved_by) == ("approved", BO.name)
    seen: list[tuple[int, int]] = []
    done = _queue(
        session_factory, box, settings, clock, approval_id=approval_id, batch_size=2, progress=lambda *p: seen.append(p)
    )
    assert (done.status, done.queued, done.finished_at) == ("queued", 5, clock())
    assert seen == [(2, 5), (4, 5), (5, 5)]
    assert [kind for _, kind in _commands(session_factory)] == ["EraseDevice"] * 5
    with read_transaction(session_factory) as session:
        bulk_ids = set(session.scalars(select(Command.bulk_id)))
        assert bulk_ids == {session.get(CommandApproval, approval_id).bulk_id}  # type: ignore[union-attr]
        actions = list(session.execute(select(AuditEvent.action, AuditEvent.actor).order_by(AuditEvent.id)))
        assert [tuple(row) for row in actions] == [("command.send_bulk", ANN.name), ("command.approve", BO.name)]
    with pytest.raises(ApprovalRefused, match="already"), transaction(session_factory) as session:
        command_approvals.approve(session, approval_id=approval_id, now=clock(), actor=BO)


def test_an_expired_request_cannot_be_approved(
    session_factory: SessionFactory, box: SecretBox, settings: Settings, clock: Clock
) -> None:
    approval_id = _request(session_factory, box, settings, clock, 1)
    clock.advance(hours=24)
    with read_transaction(session_factory) as session:
        assert command_approvals.get_approval(session, approval_id=approval_id, now=clock()).status == "expired"
    with pytest.raises(ApprovalRefused, match="expired"), transaction(session_factory) as session:
        command_approvals.approve(session, approval_id=approval_id, now=clock(), actor=BO)
    assert _commands(session_factory) == []


class Stop(Exception):
    pass


def test_a_queuing_that_stopped_half_way_resumes_and_queues_each_device_once(
    session_factory: SessionFactory, box: SecretBox, settings: Settings, clock: Clock
) -> None:
    approval_id = _request(session_factory, box, settings, clock, 5)
    with transaction(session_factory) as session:
        command_approvals.approve(session, approval_id=approval_id, now=clock(), actor=BO)

    def stop(done: int, total: int) -> None:
        raise Stop  # the process dies after the first batch committed

    with pytest.raises(Stop):
        _queue(session_factory, box, settings, clock, approval_id=approval_id, batch_size=2, progress=stop)
    assert len(_commands(session_factory)) == 2
    with transaction(session_factory) as session:  # the approval is let through again, to resume it
        again = command_approvals.approve(session, approval_id=approval_id, now=clock(), actor=BO)
        assert again.status == "approved" and again.queued == 2
    done = _queue(session_factory, box, settings, clock, approval_id=approval_id, batch_size=2)
    assert done.queued == 5 and len(set(_commands(session_factory))) == 5 == len(_commands(session_factory))
    with read_transaction(session_factory) as session:
        assert session.scalar(select(func.count()).where(AuditEvent.action == "command.approve")) == 1


def test_a_device_that_left_enrollment_before_the_approval_is_passed_over(
    session_factory: SessionFactory, box: SecretBox, settings: Settings, clock: Clock
) -> None:
    approval_id = _request(session_factory, box, settings, clock, 3)
    with transaction(session_factory) as session:
        session.get(Enrollment, "UDID-E01").status = EnrollmentStatus.unenrolled  # type: ignore[union-attr]
        command_approvals.approve(session, approval_id=approval_id, now=clock(), actor=BO)
    done = _queue(session_factory, box, settings, clock, approval_id=approval_id)
    assert done.queued == 2 and [udid for udid, _ in _commands(session_factory)] == ["UDID-E00", "UDID-E02"]


def test_the_stored_payload_is_sealed_and_an_unknown_request_is_not_found(
    session_factory: SessionFactory, box: SecretBox, settings: Settings, clock: Clock
) -> None:
    approval_id = _request(session_factory, box, settings, clock, 1)
    with read_transaction(session_factory) as session:
        stored = session.get(CommandApproval, approval_id)
        assert stored is not None and b"PreserveDataPlan" not in stored.payload_encrypted
        assert [a.id for a in command_approvals.list_approvals(session, now=clock())] == [approval_id]
        with pytest.raises(NotFound):
            command_approvals.get_approval(session, approval_id=approval_id + 1, now=clock())
