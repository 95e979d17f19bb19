"""What the push tests share: a clock, enrollments with tokens, a scripted APNs sender and a certificate store."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.push.apns import Notification, PushOutcome
from pippin.push.identity import PushIdentity
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import Enrollment, EnrollmentStatus, PushResult
from tests.push.identities import push_identity

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class ScriptedAPNs:
    """Answers each push with ``answer(token)`` (delivered by default) and remembers every push sent."""

    def __init__(self, answer: Callable[[str], PushOutcome] | None = None) -> None:
        self.answer = answer or (lambda token: PushOutcome(PushResult.delivered, 200, apns_id=f"id-{token[-8:]}"))
        self.sent: list[tuple[str, Notification]] = []
        self.lock = threading.Lock()
        self.closed = False

    def send_all(self, identity: PushIdentity, notifications: Sequence[Notification]) -> list[PushOutcome]:
        with self.lock:
            self.sent.extend((identity.fingerprint, n) for n in notifications)
        return [self.answer(n.token) for n in notifications]

    def close(self) -> None:
        self.closed = True

    def tokens(self) -> list[str]:
        return [notification.token for _, notification in self.sent]


class CertificateStore:
    """The certificate store's side as delivery relies on it: a refused certificate is not handed out again."""

    def __init__(self, identity: PushIdentity | None) -> None:
        self.identity = identity
        self.refused: dict[str, str] = {}

    def load(self, _session: Session) -> PushIdentity | None:
        if self.identity is None or self.identity.fingerprint in self.refused:
            return None
        return self.identity

    def record_refusal(self, _session: Session, fingerprint: str, reason: str) -> None:
        self.refused[fingerprint] = reason


def token_of(index: int) -> str:
    return f"{index:064x}"


def udid_of(index: int) -> str:
    return f"0000{index:04d}-000A1B2C3D4E5F60"


def enroll(
    session_factory: SessionFactory,
    count: int,
    *,
    start: int = 0,
    status: EnrollmentStatus = EnrollmentStatus.enrolled,
    with_token: bool = True,
    last_seen_at: datetime | None = T0,
) -> list[str]:
    """``count`` enrollments (UDIDs returned), each with its own token and PushMagic."""
    udids = []
    with transaction(session_factory) as session:
        for index in range(start, start + count):
            session.add(
                Enrollment(
                    udid=udid_of(index),
                    status=status,
                    first_contact_at=T0,
                    enrolled_at=T0,
                    last_seen_at=last_seen_at,
                    push_token=token_of(index) if with_token else None,
                    push_magic=f"MAGIC-{index}" if with_token else None,
                )
            )
            udids.append(udid_of(index))
    return udids


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def apns() -> ScriptedAPNs:
    return ScriptedAPNs()


@pytest.fixture
def certificates() -> CertificateStore:
    return CertificateStore(push_identity())


@pytest.fixture
def push_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"push_max_attempts": 5, "push_expiration": timedelta(days=7)})
