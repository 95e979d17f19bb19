"""What the push certificate's service tests share: the master key's box, and a request made and answered."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import func, inspect, select

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.push import certificate as certificate_service
from pippin.push import request as request_service
from pippin.push.schemas import PushCertificateUploadResult, PushRequestFile
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import AuditEvent, PushCertificate, PushVendorCertificate
from tests.actors import TEST_ACTOR
from tests.crypto.openssl_tokens import pooled_key_generator
from tests.push.apple_ca import issue_push_certificate, pem

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
