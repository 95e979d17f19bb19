"""DEP tokens end to end against the Apple simulator: the admin's steps 2-4, renewal, and Apple's refusals.

The simulator's portal plays Business Manager: an MDM server is created with Pippin's certificate and its
"Download Token" answers the .p7m, exactly the file an admin downloads (reference 1.1-1.4).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import MetaData, select

from pippin.config import Settings
from pippin.crypto.certs import load_certificate_pem
from pippin.crypto.cms import decrypt_enveloped, mime_text_body
from pippin.crypto.keys import open_private_key
from pippin.crypto.secrets import SecretBox
from pippin.dep import token as token_service
from pippin.dep.errors import TermsNotSigned, TokenRejected
from pippin.dep.schemas import TokenUploadResult
from pippin.errors import Conflict
from pippin.logs import JSONFormatter
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import TokenStatus
from tests.actors import TEST_ACTOR
from tests.crypto.openssl_tokens import openssl_decrypt, openssl_encrypt, pooled_key_generator
from tests.simulator import RunningSimulator

ADMIN = "ann@example.com"


@pytest.fixture
def online(settings: Settings, sim: RunningSimulator) -> Settings:
    return settings.model_copy(update={"dep_base_url": sim.base_url, "dep_max_retries": 1, "dep_timeout": 10.0})


@pytest.fixture(autouse=True)
def _pooled_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_service, "generate_private_key", pooled_key_generator())


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    return SecretBox.from_settings(settings)


def keypair(factory: SessionFactory, box: SecretBox, name: str = "acme") -> str:
    with transaction(factory) as session:
        return token_service.create_keypair(session, name=name, box=box, actor=TEST_ACTOR)


def create_server(sim: RunningSimulator, certificate_pem: str, name: str = "Acme MDM") -> str:
    """Business Manager: add an MDM server with Pippin's certificate; returns its server_uuid."""
    response = sim.portal.post(
        "/portal/mdm-servers", json={"name": name, "public_key_pem": certificate_pem, "admin_apple_id": ADMIN}
    )
    assert response.status_code == 201, response.text
    server_uuid: str = response.json()["server_uuid"]
    return server_uuid


def download_token(sim: RunningSimulator, server_uuid: str, apple_id: str | None = None) -> bytes:
    params = {"apple_id": apple_id} if apple_id else None
    response = sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token", params=params)
    assert response.status_code == 200, response.text
    return response.content


def upload(
    factory: SessionFactory, box: SecretBox, settings: Settings, p7m: bytes, *, name: str = "acme", **kw: Any
) -> TokenUploadResult:
    return token_service.upload_token(
        factory,
        name=name,
        p7m=p7m,
        apple_id=kw.pop("apple_id", ADMIN),
        box=box,
        settings=settings,
        actor=TEST_ACTOR,
        **kw,
    )


def connect(factory: SessionFactory, box: SecretBox, settings: Settings, sim: RunningSimulator) -> str:
    """Steps 2-4 for token ``acme``; returns the Apple server_uuid."""
    server_uuid = create_server(sim, keypair(factory, box))
    upload(factory, box, settings, download_token(sim, server_uuid))
    return server_uuid


def row(factory: SessionFactory, name: str = "acme") -> dict[str, Any]:
    with transaction(factory) as session:
        token = token_service.get_token(session, name=name)
        return {key: getattr(token, key) for key in token.__mapper__.columns.keys()}  # noqa: SIM118


def test_steps_2_to_4_connect_a_token(
    session_factory: SessionFactory, box: SecretBox, online: Settings, sim: RunningSimulator
) -> None:
    pem = keypair(session_factory, box)
    server_uuid = create_server(sim, pem)
    result = upload(session_factory, box, online, download_token(sim, server_uuid))
    assert result.warnings == []
    read = result.token
    assert (read.name, read.server_uuid, read.server_name, read.status) == ("acme", server_uuid, "Acme MDM", "ok")
    assert read.apple_id == read.admin_id == ADMIN
    assert read.days_left is not None and read.days_left >= 364
    assert not read.has_pending_keypair
    stored = row(session_factory)
    assert stored["certificate_pem"] == pem and stored["pending_certificate_pem"] is None
    assert stored["fetch_limit"] and stored["sync_limit"]
    account = token_service.fetch_account(session_factory, name="acme", box=box, settings=online)
    assert account.server_uuid == server_uuid


def _reencrypted(factory: SessionFactory, box: SecretBox, sim: RunningSimulator, tmp_path: Path, cipher: str) -> bytes:
    """Apple's token for a new server, decrypted with openssl and encrypted again with ``cipher``."""
    pem = keypair(factory, box)
    original = download_token(sim, create_server(sim, pem))
    with transaction(factory) as session:
        sealed = token_service.get_token(session, name="acme").pending_private_key_encrypted
    assert sealed is not None
    key_pem = open_private_key(sealed, box).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    inner = openssl_decrypt(original, key_pem, tmp_path / "decrypt")
    assert b"-----BEGIN MESSAGE-----" in inner
    return openssl_encrypt(inner, pem, tmp_path / "encrypt", cipher=cipher)


@pytest.mark.parametrize("cipher", ["aes128", "aes256", "des3"])
def test_tokens_encrypted_by_openssl_upload_and_work(
    session_factory: SessionFactory,
    box: SecretBox,
    online: Settings,
    sim: RunningSimulator,
    tmp_path: Path,
    cipher: str,
) -> None:
    p7m = _reencrypted(session_factory, box, sim, tmp_path, cipher)
    assert upload(session_factory, box, online, p7m).token.status == "ok"
    assert token_service.fetch_account(session_factory, name="acme", box=box, settings=online).server_name == "Acme MDM"


def test_a_second_key_pair_waits_until_a_token_for_it_arrives(
    session_factory: SessionFactory, box: SecretBox, online: Settings, sim: RunningSimulator
) -> None:
    server_uuid = connect(session_factory, box, online, sim)
    first = row(session_factory)
    new_pem = keypair(session_factory, box)
    assert new_pem != first["certificate_pem"]
    pending = row(session_factory)
    assert pending["certificate_pem"] == first["certificate_pem"]
    assert pending["private_key_encrypted"] == first["private_key_encrypted"]
    assert pending["pending_certificate_pem"] == new_pem
    # The working token still works, and a renewal to the old certificate keeps the new pair pending.
    upload(session_factory, box, online, download_token(sim, server_uuid))
    assert row(session_factory)["pending_certificate_pem"] == new_pem
    # The admin uploads the new certificate at Apple; the next token promotes the pending pair.
    response = sim.portal.put(f"/portal/mdm-servers/{server_uuid}/public-key", json={"public_key_pem": new_pem})
    assert response.status_code == 200, response.text
    result = upload(session_factory, box, online, download_token(sim, server_uuid))
    promoted = row(session_factory)
    assert not result.token.has_pending_keypair
    assert promoted["certificate_pem"] == new_pem and promoted["pending_certificate_pem"] is None
    assert promoted["private_key_encrypted"] == pending["pending_private_key_encrypted"]


def test_renewal_for_the_same_server_keeps_the_sync_state(
    session_factory: SessionFactory, box: SecretBox, online: Settings, sim: RunningSimulator
) -> None:
    server_uuid = connect(session_factory, box, online, sim)
    with transaction(session_factory) as session:
        token = token_service.get_token(session, name="acme")
        token.cursor, token.cursor_kind = "MTIzNDU2Nzg5MA", "sync"
    before = row(session_factory)
    upload(session_factory, box, online, download_token(sim, server_uuid))
    after = row(session_factory)
    assert after["id"] == before["id"] and after["cursor"] == "MTIzNDU2Nzg5MA"
    assert after["credentials_encrypted"] != before["credentials_encrypted"]
    assert after["uploaded_at"] >= before["uploaded_at"]


def test_renewal_with_another_servers_token_is_refused_unless_forced(
    session_factory: SessionFactory, box: SecretBox, online: Settings, sim: RunningSimulator
) -> None:
    connect(session_factory, box, online, sim)
    with transaction(session_factory) as session:
        token_service.get_token(session, name="acme").cursor = "MTIzNDU2Nzg5MA"
    other_uuid = create_server(sim, row(session_factory)["certificate_pem"], name="Other MDM")
    other_p7m = download_token(sim, other_uuid)
    before = row(session_factory)
    with pytest.raises(Conflict) as caught:
        upload(session_factory, box, online, other_p7m)
    assert "Other MDM" in caught.value.message and "Acme MDM" in caught.value.message
    assert "--force" in str(caught.value.hint)
    assert row(session_factory) == before
    result = upload(session_factory, box, online, other_p7m, force=True)
    assert (result.token.server_uuid, result.token.server_name) == (other_uuid, "Other MDM")
    assert row(session_factory)["cursor"] is None


def test_a_different_apple_id_gets_a_warning_naming_the_one_to_renew_with(
    session_factory: SessionFactory, box: SecretBox, online: Settings, sim: RunningSimulator
) -> None:
    server_uuid = create_server(sim, keypair(session_factory, box))
    p7m = download_token(sim, server_uuid, apple_id="bob@example.com")
    result = upload(session_factory, box, online, p7m, apple_id=ADMIN)
    assert len(result.warnings) == 1
    assert "bob@example.com" in result.warnings[0] and ADMIN in result.warnings[0]
    assert (result.token.apple_id, result.token.admin_id) == (ADMIN, "bob@example.com")


def test_upload_while_terms_are_unsigned_is_refused_and_changes_nothing(
    session_factory: SessionFactory, box: SecretBox, online: Settings, sim: RunningSimulator
) -> None:
    server_uuid = create_server(sim, keypair(session_factory, box))
    p7m = download_token(sim, server_uuid)
    assert sim.portal.post("/portal/terms").status_code == 200
    before = row(session_factory)
    with pytest.raises(TermsNotSigned) as caught:
        upload(session_factory, box, online, p7m)
    assert "accept" in str(caught.value.hint)
    assert row(session_factory) == before


def test_new_terms_mark_the_token_and_accepting_them_brings_it_back(
    session_factory: SessionFactory, box: SecretBox, online: Settings, sim: RunningSimulator
) -> None:
    connect(session_factory, box, online, sim)
    assert sim.portal.post("/portal/terms").status_code == 200
    with pytest.raises(TermsNotSigned):
        token_service.fetch_account(session_factory, name="acme", box=box, settings=online)
    marked = token_service_read(session_factory)
    assert marked.status == TokenStatus.terms_not_signed
    assert marked.last_error and "terms" in marked.last_error and marked.last_error_at
    with transaction(session_factory) as session, pytest.raises(TermsNotSigned):
        token_service.open_client(token_service.get_token(session, name="acme"), box=box, settings=online)
    assert sim.portal.post("/portal/terms/accept").status_code == 200
    token_service.fetch_account(session_factory, name="acme", box=box, settings=online)
    assert token_service_read(session_factory).status == TokenStatus.ok


def test_a_token_replaced_by_a_newer_download_is_rejected(
    session_factory: SessionFactory, box: SecretBox, online: Settings, sim: RunningSimulator
) -> None:
    server_uuid = connect(session_factory, box, online, sim)
    download_token(sim, server_uuid)  # someone downloads again at Apple and never uploads it
    with pytest.raises(TokenRejected) as caught:
        token_service.fetch_account(session_factory, name="acme", box=box, settings=online)
    assert "Download Token" in str(caught.value.hint)
    read = token_service_read(session_factory)
    assert read.status == TokenStatus.token_rejected
    assert read.last_error and "newer token" in read.last_error


def token_service_read(factory: SessionFactory) -> Any:
    with transaction(factory) as session:
        return token_service.read_token(session, name="acme")


@contextmanager
def _captured_logs() -> Iterator[io.StringIO]:
    """Every record of Pippin's loggers at DEBUG, formatted with its fields as a log collector would get it."""
    logger = logging.getLogger("pippin")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JSONFormatter())
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def test_no_secret_reaches_the_database_in_clear(
    session_factory: SessionFactory, box: SecretBox, online: Settings, sim: RunningSimulator, tmp_path: Path
) -> None:
    """Dump every column of every table after an upload; no OAuth value and no private key may appear (nor in logs)."""
    pem = keypair(session_factory, box)
    p7m = download_token(sim, create_server(sim, pem))
    with transaction(session_factory) as session:
        sealed = token_service.get_token(session, name="acme").pending_private_key_encrypted
        assert sealed is not None
        key = open_private_key(sealed, box)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    text = mime_text_body(decrypt_enveloped(p7m, private_key=key, certificate=load_certificate_pem(pem)))
    fields = json.loads(text.split("-----BEGIN MESSAGE-----")[1].split("-----END MESSAGE-----")[0])
    secrets = [fields[name].encode() for name in ("consumer_key", "consumer_secret", "access_token", "access_secret")]
    with _captured_logs() as logged:
        upload(session_factory, box, online, p7m)
        token_service.fetch_account(session_factory, name="acme", box=box, settings=online)
    assert "DEP token uploaded" in logged.getvalue()
    for secret in secrets:
        assert secret.decode() not in logged.getvalue()

    engine = session_factory.kw["bind"]
    metadata = MetaData()
    metadata.reflect(engine)
    dumped = bytearray()
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for record in connection.execute(select(table)):
                for value in record:
                    dumped += value if isinstance(value, bytes | memoryview) else str(value).encode()
                    dumped += b"\x00"
    assert b"Acme MDM" in dumped, "the dump reads the token row"
    for secret in [*secrets, key_pem, key_der, key_pem.split(b"\n")[1]]:
        assert secret not in dumped
