"""DEP tokens without Apple: key pairs, the checks every uploaded file goes through, health and refusals.

Each refused upload runs in its own transaction, as the CLI and API do, and the stored row is compared before
and after: a refused file changes nothing.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.x509.oid import NameOID
from sqlalchemy import inspect

from pippin.config import Settings
from pippin.crypto.certs import build_self_signed_certificate, certificate_to_pem, load_certificate_pem
from pippin.crypto.keys import generate_private_key
from pippin.crypto.secrets import SecretBox
from pippin.dep import token as token_service
from pippin.dep.errors import (
    AccessDenied,
    DEPAuthFailure,
    DEPUnavailable,
    TermsNotSigned,
    TokenExpired,
    TokenRejected,
)
from pippin.dep.schemas import ExpiryLevel
from pippin.errors import InvalidInput, NotFound, PippinError
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import DEPToken, TokenStatus
from tests.actors import TEST_ACTOR
from tests.crypto.openssl_tokens import inner_token_text, openssl_encrypt, pooled_key_generator, token_fields

IN_A_YEAR = datetime.now(UTC) + timedelta(days=365)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def offline(settings: Settings) -> Settings:
    """Settings whose Apple is a closed port: any test that reaches Apple fails fast with DEPUnavailable."""
    return settings.model_copy(update={"dep_base_url": _closed_port_url(), "dep_max_retries": 0, "dep_timeout": 2.0})


@pytest.fixture(autouse=True)
def _pooled_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_service, "generate_private_key", pooled_key_generator())


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    return SecretBox.from_settings(settings)


def _snapshot(factory: SessionFactory, name: str) -> dict[str, Any]:
    with transaction(factory) as session:
        token = token_service.get_token(session, name=name)
        return {column.key: getattr(token, column.key) for column in inspect(DEPToken).column_attrs}


def _keypair(factory: SessionFactory, box: SecretBox, name: str = "acme") -> str:
    with transaction(factory) as session:
        return token_service.create_keypair(session, name=name, box=box, actor=TEST_ACTOR)


def _refused_upload(
    factory: SessionFactory, box: SecretBox, settings: Settings, p7m: bytes, *, name: str = "acme", **kw: Any
) -> PippinError:
    before = _snapshot(factory, name) if name == "acme" else None
    with pytest.raises(PippinError) as caught:
        token_service.upload_token(
            factory,
            name=name,
            p7m=p7m,
            apple_id=kw.pop("apple_id", "admin@example.com"),
            box=box,
            settings=settings,
            actor=TEST_ACTOR,
        )
    if before is not None:
        assert _snapshot(factory, name) == before
    error = caught.value
    assert error.message and error.hint, "every refusal says what happened and what to do"
    assert "\n" not in error.message
    return error


def test_keypair_creates_an_awaiting_token_with_a_pending_certificate(
    session_factory: SessionFactory, box: SecretBox
) -> None:
    pem = _keypair(session_factory, box)
    certificate = load_certificate_pem(pem)
    assert certificate.public_key().key_size == 2048
    row = _snapshot(session_factory, "acme")
    assert row["status"] == TokenStatus.awaiting_token
    assert row["pending_certificate_pem"] == pem
    assert row["certificate_pem"] is None and row["private_key_encrypted"] is None
    assert b"PRIVATE KEY" not in row["pending_private_key_encrypted"]


def test_asking_for_the_key_again_prints_the_same_pending_certificate(
    session_factory: SessionFactory, box: SecretBox
) -> None:
    assert _keypair(session_factory, box) == _keypair(session_factory, box)


def test_a_pending_certificate_near_its_end_is_replaced(session_factory: SessionFactory, box: SecretBox) -> None:
    first = _keypair(session_factory, box)
    old_key = generate_private_key()
    nearly_done = build_self_signed_certificate(
        old_key, common_name="x", now=datetime.now(UTC), valid_for=timedelta(days=3)
    )
    with transaction(session_factory) as session:
        token_service.get_token(session, name="acme").pending_certificate_pem = certificate_to_pem(nearly_done)
    assert _keypair(session_factory, box) not in (first, certificate_to_pem(nearly_done))


@pytest.mark.parametrize(
    "name",
    ["", "a" * 54, "a" * 65, "has space", "slash/", "dots..ok-but-\u00e9", "semi;colon", ".", "..", "-", "-x", "_x"],
)
def test_token_names_are_checked(session_factory: SessionFactory, box: SecretBox, name: str) -> None:
    with pytest.raises(InvalidInput, match="1-53 letters"), transaction(session_factory) as session:
        token_service.create_keypair(session, name=name, box=box, actor=TEST_ACTOR)


@pytest.mark.parametrize("name", ["a\x00b", "a\x1bb", "a\u202eb"])
def test_token_names_with_control_characters_are_refused_before_the_database(
    session_factory: SessionFactory, box: SecretBox, name: str
) -> None:
    with pytest.raises(InvalidInput, match="control, format or separator"), transaction(session_factory) as session:
        token_service.create_keypair(session, name=name, box=box, actor=TEST_ACTOR)
    with pytest.raises(InvalidInput, match="control, format or separator"), transaction(session_factory) as session:
        token_service.get_token(session, name=name)


def test_a_name_at_the_limit_names_its_certificate(session_factory: SessionFactory, box: SecretBox) -> None:
    name = "a" * 53
    pem = _keypair(session_factory, box, name=name)
    common_name = load_certificate_pem(pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == f"pippin-dep-{name}"


def test_a_token_named_by_an_earlier_rule_stays_reachable(session_factory: SessionFactory, box: SecretBox) -> None:
    with transaction(session_factory) as session:
        session.add(DEPToken(name="-old", status="awaiting_token"))
    with transaction(session_factory) as session:
        assert token_service.get_token(session, name="-old").name == "-old"
        token_service.create_keypair(session, name="-old", box=box, actor=TEST_ACTOR)


def test_name_with_every_allowed_character_is_accepted(session_factory: SessionFactory, box: SecretBox) -> None:
    _keypair(session_factory, box, name="Acme_iOS-2026.prod")


def test_upload_for_an_unknown_name_says_to_make_a_key_pair(
    session_factory: SessionFactory, box: SecretBox, offline: Settings
) -> None:
    error = _refused_upload(session_factory, box, offline, b"x", name="nobody")
    assert isinstance(error, NotFound)
    assert "pippin dep keypair nobody" in str(error.hint)


@pytest.mark.parametrize(
    ("p7m", "says"),
    [
        (b"", "empty"),
        (os.urandom(2048), "not a DEP server token"),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "PEM certificate"),
        (b"\x30\x82\x01\x00" + os.urandom(100), "not a DEP server token"),
    ],
)
def test_files_that_are_not_tokens_are_refused(
    session_factory: SessionFactory, box: SecretBox, offline: Settings, p7m: bytes, says: str
) -> None:
    _keypair(session_factory, box)
    error = _refused_upload(session_factory, box, offline, p7m)
    assert isinstance(error, InvalidInput)
    assert says in error.message
    assert ".p7m" in str(error.hint)


def test_the_certificate_itself_is_refused(session_factory: SessionFactory, box: SecretBox, offline: Settings) -> None:
    pem = _keypair(session_factory, box)
    assert "PEM certificate" in _refused_upload(session_factory, box, offline, pem.encode()).message


def test_oversized_file_is_refused_before_parsing(
    session_factory: SessionFactory, box: SecretBox, offline: Settings
) -> None:
    _keypair(session_factory, box)
    error = _refused_upload(session_factory, box, offline, b"\x30" * (token_service.MAX_TOKEN_FILE_BYTES + 1))
    assert "bytes" in error.message


def test_token_for_another_key_says_to_upload_our_pem(
    session_factory: SessionFactory, box: SecretBox, offline: Settings, tmp_path: Path
) -> None:
    _keypair(session_factory, box)
    stranger = build_self_signed_certificate(generate_private_key(), common_name="pippin-dep-acme", now=IN_A_YEAR)
    p7m = openssl_encrypt(inner_token_text(token_fields(expires_at=IN_A_YEAR)), certificate_to_pem(stranger), tmp_path)
    error = _refused_upload(session_factory, box, offline, p7m)
    assert "different key" in error.message
    assert "upload the .pem from `pippin dep keypair acme`" in str(error.hint).lower()


@pytest.mark.parametrize("cut", [40, 400])
def test_truncated_token_is_refused(
    session_factory: SessionFactory, box: SecretBox, offline: Settings, tmp_path: Path, cut: int
) -> None:
    pem = _keypair(session_factory, box)
    p7m = openssl_encrypt(inner_token_text(token_fields(expires_at=IN_A_YEAR)), pem, tmp_path).rstrip()
    assert isinstance(_refused_upload(session_factory, box, offline, p7m[:-cut]), InvalidInput)


def _fields_without(field: str) -> dict[str, str]:
    fields = token_fields(expires_at=IN_A_YEAR)
    del fields[field]
    return fields


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (_fields_without("consumer_secret"), "consumer_secret is missing"),
        (_fields_without("access_token_expiry"), "access_token_expiry is missing"),
        ({**token_fields(expires_at=IN_A_YEAR), "access_token": ""}, "access_token is empty"),
        ({**token_fields(expires_at=IN_A_YEAR), "consumer_key": 42}, "consumer_key is empty or not text"),
        ({**token_fields(expires_at=IN_A_YEAR), "access_token_expiry": "next year"}, "not a date"),
        ("[1, 2]", "not an object"),
        ("{not json", "JSON"),
        ("[" * 100_000, "JSON"),
        (token_fields(expires_at=datetime(2020, 1, 17, 11, 2, 21, tzinfo=UTC)), "expired on 2020-01-17 11:02"),
    ],
)
def test_decrypted_content_is_checked(
    session_factory: SessionFactory,
    box: SecretBox,
    offline: Settings,
    tmp_path: Path,
    payload: dict[str, Any] | str,
    says: str,
) -> None:
    pem = _keypair(session_factory, box)
    p7m = openssl_encrypt(inner_token_text(payload), pem, tmp_path)
    error = _refused_upload(session_factory, box, offline, p7m)
    assert isinstance(error, InvalidInput)
    assert says in error.message


@pytest.mark.parametrize("apple_id", ["", "not-an-email", "two@@example.com", "sp ace@example.com"])
def test_apple_id_must_look_like_one(
    session_factory: SessionFactory, box: SecretBox, offline: Settings, tmp_path: Path, apple_id: str
) -> None:
    pem = _keypair(session_factory, box)
    p7m = openssl_encrypt(inner_token_text(token_fields(expires_at=IN_A_YEAR)), pem, tmp_path)
    assert "--apple-id" in str(_refused_upload(session_factory, box, offline, p7m, apple_id=apple_id).hint)


def test_unreachable_apple_is_unavailable_and_changes_nothing(
    session_factory: SessionFactory, box: SecretBox, offline: Settings, tmp_path: Path
) -> None:
    pem = _keypair(session_factory, box)
    p7m = openssl_encrypt(inner_token_text(token_fields(expires_at=IN_A_YEAR)), pem, tmp_path, cipher="des3")
    assert isinstance(_refused_upload(session_factory, box, offline, p7m), DEPUnavailable)


@pytest.mark.parametrize(
    ("days", "level"),
    [(400, ExpiryLevel.ok), (30.5, ExpiryLevel.ok), (29, ExpiryLevel.warning), (6.9, ExpiryLevel.alarm)],
)
def test_expiry_levels(days: float, level: ExpiryLevel) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert token_service.expiry_level(now + timedelta(days=days), now=now) is level
    assert token_service.expiry_level(now - timedelta(seconds=1), now=now) is ExpiryLevel.expired


def _uploaded_row(session_factory: SessionFactory, box: SecretBox, **values: Any) -> None:
    """A token row as an upload leaves it, written directly: the checks below are about reading it back."""
    _keypair(session_factory, box)
    with transaction(session_factory) as session:
        token = token_service.get_token(session, name="acme")
        token.credentials_encrypted = box.encrypt(
            b'{"consumer_key":"CK_1","consumer_secret":"CS_1","access_token":"AT_1","access_secret":"AS_1"}'
        )
        token.status = TokenStatus.ok
        token.expires_at = IN_A_YEAR
        for key, value in values.items():
            setattr(token, key, value)


def test_read_token_reports_days_left_and_the_pending_key(session_factory: SessionFactory, box: SecretBox) -> None:
    now = datetime.now(UTC)
    _uploaded_row(session_factory, box, expires_at=now + timedelta(days=5, hours=1), apple_id="a@example.com")
    with transaction(session_factory) as session:
        read = token_service.read_token(session, name="acme", now=now)
        listed = token_service.list_tokens(session, now=now)
    assert (read.days_left, read.expiry_level, read.status) == (5, ExpiryLevel.alarm, "ok")
    assert read.has_pending_keypair
    assert listed == [read]
    dumped = read.model_dump_json()
    assert "CK_1" not in dumped and "PRIVATE" not in dumped


def test_read_token_shows_a_passed_expiry_as_expired(session_factory: SessionFactory, box: SecretBox) -> None:
    now = datetime.now(UTC)
    _uploaded_row(session_factory, box, expires_at=now - timedelta(days=2, hours=1))
    with transaction(session_factory) as session:
        read = token_service.read_token(session, name="acme", now=now)
    assert (read.days_left, read.expiry_level, read.status) == (-3, ExpiryLevel.expired, "expired")


def test_get_token_for_a_missing_name_is_not_found(session: Any) -> None:
    with pytest.raises(NotFound, match="no DEP token named 'ghost'"):
        token_service.get_token(session, name="ghost")


def test_open_client_refuses_a_token_awaiting_upload(
    session_factory: SessionFactory, box: SecretBox, offline: Settings
) -> None:
    _keypair(session_factory, box)
    with transaction(session_factory) as session, pytest.raises(DEPAuthFailure) as caught:
        token_service.open_client(token_service.get_token(session, name="acme"), box=box, settings=offline)
    assert caught.value.token_status == TokenStatus.awaiting_token
    assert "pippin dep keypair acme" in str(caught.value.hint)


def test_open_client_refuses_an_expired_token_without_calling_apple(
    session_factory: SessionFactory, box: SecretBox, offline: Settings
) -> None:
    _uploaded_row(session_factory, box, expires_at=datetime.now(UTC) - timedelta(minutes=1))
    with transaction(session_factory) as session, pytest.raises(TokenExpired, match="did not contact Apple"):
        token_service.open_client(token_service.get_token(session, name="acme"), box=box, settings=offline)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (TokenStatus.terms_not_signed, TermsNotSigned),
        (TokenStatus.access_denied, AccessDenied),
        (TokenStatus.token_rejected, TokenRejected),
    ],
)
def test_open_client_refuses_a_token_apple_refused(
    session_factory: SessionFactory,
    box: SecretBox,
    offline: Settings,
    status: TokenStatus,
    error_type: type[DEPAuthFailure],
) -> None:
    _uploaded_row(session_factory, box, status=status)
    with transaction(session_factory) as session, pytest.raises(error_type) as caught:
        token_service.open_client(token_service.get_token(session, name="acme"), box=box, settings=offline)
    assert "pippin dep account acme" in str(caught.value.hint)


def test_open_client_for_a_good_token_builds_a_client(
    session_factory: SessionFactory, box: SecretBox, offline: Settings
) -> None:
    _uploaded_row(session_factory, box)
    with transaction(session_factory) as session:
        client = token_service.open_client(token_service.get_token(session, name="acme"), box=box, settings=offline)
    with client:
        assert "CK_1" not in repr(client)


def test_failures_and_successes_are_recorded(session_factory: SessionFactory, box: SecretBox) -> None:
    _uploaded_row(session_factory, box)
    now = datetime.now(UTC)
    with transaction(session_factory) as session:
        token = token_service.get_token(session, name="acme")
        token_service.record_dep_failure(token, DEPUnavailable(), now=now)
        assert token.status == TokenStatus.ok and token.last_error_at == now
        token_service.record_dep_failure(token, TermsNotSigned(), now=now)
        assert token.status == TokenStatus.terms_not_signed
        assert "accept" in str(token.last_error)
        token_service.record_dep_success(token, now=now)
        assert (token.status, token.last_error, token.last_error_at) == (TokenStatus.ok, None, None)


def test_fetch_account_records_an_unreachable_apple(
    session_factory: SessionFactory, box: SecretBox, offline: Settings
) -> None:
    _uploaded_row(session_factory, box)
    with pytest.raises(DEPUnavailable):
        token_service.fetch_account(session_factory, name="acme", box=box, settings=offline)
    row = _snapshot(session_factory, "acme")
    assert row["status"] == TokenStatus.ok
    assert "network access" in row["last_error"]
    assert row["last_error_at"] is not None
