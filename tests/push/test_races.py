"""Two processes making the first request (or importing a vendor certificate) at once end with one row, no error."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from pippin.crypto.keys import generate_private_key
from pippin.crypto.secrets import SecretBox
from pippin.push import vendor as vendor_service
from pippin.push.schemas import PushRequestFile, VendorImportResult
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import AuditEvent, PushCertificate, PushVendorCertificate
from tests.actors import TEST_ACTOR
from tests.push.apple_ca import issue_vendor_certificate, pem
from tests.push.conftest import make_request

Result = TypeVar("Result")


def _at_once(work: Callable[[], Result]) -> list[Result]:
    start = threading.Barrier(2)

    def run() -> Result:
        start.wait()
        return work()

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(run) for _ in range(2)]
        return [future.result() for future in futures]


def _count(factory: SessionFactory, model: type[PushCertificate] | type[PushVendorCertificate]) -> int:
    with transaction(factory) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_two_first_requests_at_once_make_one_request(session_factory: SessionFactory, box: SecretBox) -> None:
    made: list[PushRequestFile] = _at_once(lambda: make_request(session_factory, box))
    assert made[0].content == made[1].content and sorted(m.reused for m in made) == [False, True]
    assert _count(session_factory, PushCertificate) == 1


def test_two_vendor_imports_at_once_leave_one_vendor_certificate(
    session_factory: SessionFactory, box: SecretBox
) -> None:
    key = generate_private_key()
    certificate = pem(issue_vendor_certificate(key))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )

    def import_once() -> VendorImportResult:
        with transaction(session_factory) as session:
            return vendor_service.import_vendor_certificate(
                session, certificate=certificate, key=key_pem, box=box, actor=TEST_ACTOR
            )

    imported = _at_once(import_once)
    assert imported[0].vendor.fingerprint == imported[1].vendor.fingerprint
    assert _count(session_factory, PushVendorCertificate) == 1
    with transaction(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 2
