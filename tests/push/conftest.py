"""What the push tests share: a clock, enrollments with tokens, a scripted APNs sender, a stand-in certificate store
for delivery, and, for the certificate's own tests, the master key's box and a request made and answered."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.push import certificate as certificate_service
from pippin.push import request as request_service
from pippin.push.apns import Notification, PushOutcome
from pippin.push.identity import PushIdentity
from pippin.push.schemas import PushCertificateUploadResult, PushRequestFile
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import (
    AuditEvent,
    Enrollment,
    EnrollmentStatus,
    PushCertificate,
    PushResult,
    PushVendorCertificate,
)
from tests.actors import TEST_ACTOR
from tests.clocks import Clock
from tests.crypto.openssl_tokens import pooled_key_generator
from tests.push.apple_ca import issue_push_certificate, pem
from tests.push.identities import push_identity

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


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
    return Clock(T0)


@pytest.fixture
def apns() -> ScriptedAPNs:
    return ScriptedAPNs()


@pytest.fixture
def certificates() -> CertificateStore:
    return CertificateStore(push_identity())


@pytest.fixture
def push_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"push_max_attempts": 5, "push_expiration": timedelta(days=7)})


APPLE_ID = "admin@example.com"
#: One pool for the whole run: consecutive requests get different keys (the pool holds four).
KEYS = pooled_key_generator()


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    return SecretBox.from_settings(settings)


def make_request(factory: SessionFactory, box: SecretBox, **options: Any) -> PushRequestFile:
    with transaction(factory) as session:
        return request_service.create_request(session, box=box, actor=TEST_ACTOR, generate_key=KEYS, **options)


def pending_csr(factory: SessionFactory) -> str:
    with transaction(factory) as session:
        row = session.get(PushCertificate, 1)
        assert row is not None and row.pending_csr_pem is not None
        return row.pending_csr_pem


def upload(factory: SessionFactory, box: SecretBox, data: bytes, **options: Any) -> PushCertificateUploadResult:
    options.setdefault("apple_id", APPLE_ID)
    with transaction(factory) as session:
        return certificate_service.upload_certificate(session, data=data, box=box, actor=TEST_ACTOR, **options)


def activate(factory: SessionFactory, box: SecretBox, *, topic: str | None = None) -> x509.Certificate:
    """A request made and the certificate Apple issues for it uploaded: the active push certificate."""
    make_request(factory, box, unsigned=True)
    certificate = issue_push_certificate(pending_csr(factory), topic=topic)
    upload(factory, box, pem(certificate))
    return certificate


def snapshot(factory: SessionFactory) -> dict[str, Any]:
    """Every column of both push tables and the number of audit events: what a refusal must leave as it was."""
    with transaction(factory) as session:
        state: dict[str, Any] = {"events": session.scalar(select(func.count()).select_from(AuditEvent))}
        for model in (PushCertificate, PushVendorCertificate):
            row = session.get(model, 1)
            state[model.__tablename__] = (
                None if row is None else {c.key: getattr(row, c.key) for c in inspect(model).column_attrs}
            )
        return state
