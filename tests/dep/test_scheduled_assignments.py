"""Between syncs, `pippin serve` sends the assignments whose wait is over, for tokens in good standing only."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, select

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep import profiles
from pippin.dep.profile_schemas import ProfileCreate
from pippin.dep.scheduled import send_due_assignments
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import DEPProfile, DEPToken, Device, utcnow
from tests.actors import TEST_ACTOR
from tests.dep.test_assignment import ScriptedApple


def test_due_retries_of_good_tokens_go_out_and_refused_tokens_wait(
    session_factory: SessionFactory, settings: Settings
) -> None:
    now = utcnow()
    with transaction(session_factory) as session:
        good = DEPToken(name="good", status="ok", credentials_encrypted=b"sealed")
        refused = DEPToken(name="refused", status="terms_not_signed", credentials_encrypted=b"sealed")
        session.add_all([good, refused])
        profiles.create_profile(
            session, data=ProfileCreate(name="Staff", supervised=True), settings=settings, actor=TEST_ACTOR
        )
        session.flush()
        profile = session.scalars(select(DEPProfile)).one()
        throttled = {
            "assigned_profile_id": profile.id,
            "assigned_revision": profile.revision,
            "assignment_status": "throttled",
            "profile_status": "empty",
            "apple_record": {},
        }
        session.execute(
            insert(Device),
            [
                {**throttled, "serial_number": "DUE", "token_id": good.id, "assignment_retry_at": now - timedelta(1)},
                {**throttled, "serial_number": "WAITING", "token_id": good.id,
                 "assignment_retry_at": now + timedelta(minutes=9)},
                {**throttled, "serial_number": "REFUSED", "token_id": refused.id,
                 "assignment_retry_at": now - timedelta(1)},
            ],
        )  # fmt: skip
    apple = ScriptedApple()
    opened: list[str] = []

    def open_client(token: DEPToken) -> ScriptedApple:
        opened.append(token.name)
        return apple

    def clock() -> datetime:
        return now

    box = SecretBox.from_settings(settings)
    assert send_due_assignments(session_factory, settings=settings, box=box, open_client=open_client, clock=clock) == 1
    assert apple.sent() == ["DUE"] and opened == ["good"]
    with transaction(session_factory) as session:
        states = {
            serial: status for serial, status in session.execute(select(Device.serial_number, Device.assignment_status))
        }
    assert states == {"DUE": "assigned", "WAITING": "throttled", "REFUSED": "throttled"}
    # Nothing due any more: nothing is opened, nothing sent.
    assert send_due_assignments(session_factory, settings=settings, box=box, open_client=open_client, clock=clock) == 0
    assert opened == ["good"]
