"""What the PKI tests share: a master key's box, pre-made keys, a fixed time, and a CA in the test database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.orm import Session

from pippin.crypto.secrets import SecretBox
from pippin.pki.authority import Authority, ensure_authority
from pippin.pki.challenges import EnrollmentBinding, issue_challenge
from pippin.pki.scep import SCEPAnswer, answer_pki_operation
from tests.crypto.openssl_tokens import pooled_key_generator
from tests.pki.scep_client import SCEPClient

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
DEVICE_BINDING = EnrollmentBinding(serial_number="C02TESTSERIAL", profile_id=3, profile_revision=2)
KEYS = pooled_key_generator()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(b"k" * 32)


@pytest.fixture
def generate_key() -> Callable[[], rsa.RSAPrivateKey]:
    return KEYS


@pytest.fixture
def authority(session: Session, box: SecretBox) -> Authority:
    return ensure_authority(session, box=box, generate_key=KEYS, now=T0)


@pytest.fixture
def client(authority: Authority, tmp_path: Path) -> SCEPClient:
    return SCEPClient(key=KEYS(), ca=authority.certificate, workdir=tmp_path / "scep")


def challenge_for(session: Session, *, uses: int = 1, ttl_minutes: int = 60) -> str:
    return issue_challenge(session, binding=DEVICE_BINDING, uses=uses, expires_at=T0 + timedelta(minutes=ttl_minutes))


def answer(session: Session, box: SecretBox, message: bytes, *, now: datetime = T0) -> SCEPAnswer:
    return answer_pki_operation(session, message, box=box, generate_key=KEYS, now=now, certificate_days=365)
