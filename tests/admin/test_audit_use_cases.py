"""Each use case records its own audit event, for the actor it is given, in the transaction of its change."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.admin import api_tokens, user_lifecycle, users
from pippin.admin.audit import Actor, AuditAction, Interface
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep import assignment, assignment_runner, profiles, token_deletion
from pippin.dep.profile_schemas import ProfileCreate, ProfileUpdate
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import AuditEvent, DEPToken, Device
from tests.servers import quick_password_hashes

BOX = SecretBox(bytes(range(32)))

ANN = Actor(name="ann@example.com", interface=Interface.console, source="192.0.2.7")
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_password_hashes(monkeypatch)


def _setup(session: Session, settings: Settings) -> None:
    token = DEPToken(name="acme", status="ok")
    session.add(token)
    session.flush()
    session.add(Device(serial_number="C00", token_id=token.id, profile_status="empty", apple_record={}))
    profiles.create_profile(session, data=ProfileCreate(name="Staff"), settings=settings, actor=ANN)
    api_tokens.create_api_token(session, name="ci", actor=ANN)
    for email in ("cy@example.com", "di@example.com"):
        users.create_user(session, email=email, password=PASSWORD, actor=ANN)


UseCase = Callable[[Session, Settings], object]
USE_CASES: dict[AuditAction, UseCase] = {
    AuditAction.profile_create: lambda s, cfg: profiles.create_profile(
        s, data=ProfileCreate(name="Kiosk"), settings=cfg, actor=ANN
    ),
    AuditAction.profile_update: lambda s, cfg: profiles.update_profile(
        s, name="Staff", changes=ProfileUpdate(department="Sales"), settings=cfg, actor=ANN
    ),
    AuditAction.profile_delete: lambda s, cfg: profiles.delete_profile(s, name="Staff", actor=ANN),
    AuditAction.profile_set_default: lambda s, cfg: profiles.set_default_profile(
        s, token_name="acme", profile_name="Staff", actor=ANN
    ),
    AuditAction.profile_assign: lambda s, cfg: assignment.queue_assignment(
        s, profile_name="Staff", all_unassigned=True, actor=ANN
    ),
    AuditAction.profile_retry_due: lambda s, cfg: assignment_runner.request_due_send(s, actor=ANN, token_name="acme"),
    AuditAction.admin_user_create: lambda s, cfg: users.create_user(
        s, email="bo@example.com", password=PASSWORD, actor=ANN
    ),
    AuditAction.admin_api_token_create: lambda s, cfg: api_tokens.create_api_token(s, name="ops", actor=ANN),
    AuditAction.admin_api_token_revoke: lambda s, cfg: api_tokens.revoke_api_token(s, name="ci", actor=ANN),
    AuditAction.admin_user_disable: lambda s, cfg: user_lifecycle.disable_user(s, email="cy@example.com", actor=ANN),
    AuditAction.admin_user_enable: lambda s, cfg: user_lifecycle.enable_user(s, email="cy@example.com", actor=ANN),
    AuditAction.admin_user_unlock: lambda s, cfg: user_lifecycle.unlock_user(
        s, email="cy@example.com", actor=ANN, secret_box=BOX
    ),
    AuditAction.admin_user_set_role: lambda s, cfg: user_lifecycle.set_role(
        s, email="cy@example.com", role="read-only", actor=ANN
    ),
    AuditAction.admin_user_reset_password: lambda s, cfg: user_lifecycle.reset_password(
        s, email="cy@example.com", actor=ANN, secret_box=BOX
    ),
    AuditAction.dep_token_delete: lambda s, cfg: token_deletion.delete_token(s, name="acme", actor=ANN),
}


def _events_after(session: Session, last_id: int) -> list[tuple[str, str, str, str | None]]:
    rows = session.scalars(select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id))
    return [(event.actor, event.interface, event.action, event.source) for event in rows]


@pytest.mark.parametrize("action", list(USE_CASES), ids=str)
def test_the_use_case_records_one_event_for_its_actor(
    session_factory: SessionFactory, settings: Settings, action: AuditAction
) -> None:
    with transaction(session_factory) as session:
        _setup(session, settings)
        last = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) or 0
    with transaction(session_factory) as session:
        USE_CASES[action](session, settings)
    with transaction(session_factory) as session:
        assert _events_after(session, last) == [(ANN.name, "console", action.value, ANN.source)]


@pytest.mark.parametrize("action", list(USE_CASES), ids=str)
def test_a_change_that_rolls_back_leaves_no_event(
    session_factory: SessionFactory, settings: Settings, action: AuditAction
) -> None:
    with transaction(session_factory) as session:
        _setup(session, settings)
        last = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) or 0
    with pytest.raises(RuntimeError), transaction(session_factory) as session:
        USE_CASES[action](session, settings)
        raise RuntimeError("a later step of the same request failed")
    with transaction(session_factory) as session:
        assert _events_after(session, last) == []


def test_every_action_the_log_knows_is_recorded_by_some_use_case() -> None:
    elsewhere = {  # recorded by use cases tested with Apple (tests/dep), the console, sign-in or their own tests
        AuditAction.dep_keypair_create,
        AuditAction.dep_token_upload,
        AuditAction.dep_sync_start,
        AuditAction.admin_sign_in,
        AuditAction.admin_sign_in_failed,
        AuditAction.admin_sign_in_throttled,
        AuditAction.master_key_rotate,  # tests/admin/test_key_rotation.py
        AuditAction.push_request_create,  # tests/push
        AuditAction.push_vendor_import,
        AuditAction.push_certificate_upload,
        AuditAction.push_send,
        AuditAction.push_test,
        AuditAction.directory_user_add,  # tests/admin/test_directory.py and tests/cli/test_users.py
        AuditAction.directory_user_disable,
        AuditAction.directory_sign_in,  # tests/device/test_enrollment_web.py
        AuditAction.directory_sign_in_failed,
        AuditAction.enrollment_link_create,  # tests/mdm/test_enrollment_links.py
        AuditAction.command_send,  # tests/mdm/test_command_sending.py
        AuditAction.command_send_bulk,
        AuditAction.command_cancel,
        AuditAction.command_approve,  # tests/mdm/test_command_approvals.py
        AuditAction.profile_setup_command_add,  # tests/mdm/test_setup_commands.py
        AuditAction.profile_setup_command_remove,
    }
    assert set(USE_CASES) | elsewhere == set(AuditAction)
