"""Server tokens as Business Manager ships them: S/MIME around CMS EnvelopedData (reference 1.2-1.4)."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7
from sqlalchemy import select

from pippin.sim.models import SimServerToken
from tests.sim.portal_client import certificate_pem, create_server, default_certificate_pem, private_key_pem, rsa_key
from tests.simulator import RunningSimulator


def _inner_json(plaintext: bytes) -> dict[str, str]:
    headers, _, body = plaintext.partition(b"\r\n\r\n")
    assert headers == b"Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit"
    lines = body.split(b"\r\n")
    assert lines[0] == b"-----BEGIN MESSAGE-----"
    assert lines[2] == b"-----END MESSAGE-----"
    payload: dict[str, str] = json.loads(lines[1])
    return payload


def test_token_file_has_apples_outer_layer(sim: RunningSimulator) -> None:
    server_uuid = create_server(sim.portal, "Berlin MDM")
    response = sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pkcs7-mime"
    assert response.headers["content-disposition"].startswith('attachment; filename="Berlin_MDM_Token_')
    assert response.headers["content-disposition"].endswith('_smime.p7m"')
    head, _, body = response.content.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b'Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data',
        b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="smime.p7m"',
        b"Content-Description: S/MIME Encrypted Message",
    ]
    lines = body.strip().split(b"\r\n")
    assert all(len(line) == 76 for line in lines[:-1]) and 0 < len(lines[-1]) <= 76
    envelope = cms.ContentInfo.load(base64.b64decode(b"".join(lines)))
    assert envelope["content_type"].native == "enveloped_data"
    enveloped = envelope["content"]
    (recipient,) = enveloped["recipient_infos"]
    assert recipient.name == "ktri" and recipient.chosen["version"].native == "v0"
    assert recipient.chosen["rid"].name == "issuer_and_serial_number"
    assert recipient.chosen["key_encryption_algorithm"]["algorithm"].native == "rsaes_pkcs1v15"
    assert enveloped["encrypted_content_info"]["content_encryption_algorithm"]["algorithm"].native == "aes128_cbc"


def test_token_decrypts_with_openssl_smime(sim: RunningSimulator, tmp_path: Path) -> None:
    server_uuid = create_server(sim.portal)
    token_path, key_path = tmp_path / "token_smime.p7m", tmp_path / "key.pem"
    token_path.write_bytes(sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token").content)
    key_path.write_bytes(private_key_pem())
    result = subprocess.run(
        ["/usr/bin/openssl", "smime", "-decrypt", "-in", str(token_path), "-inkey", str(key_path)],
        capture_output=True,
        check=True,
    )
    token = _inner_json(result.stdout)
    assert token["consumer_key"].startswith("CK_") and len(token["consumer_key"]) == 99
    assert token["consumer_secret"].startswith("CS_") and token["access_secret"].startswith("AS_")
    assert token["access_token"].startswith("AT_O")


def test_token_decrypts_with_cryptography_and_expires_a_year_after_issue(sim: RunningSimulator) -> None:
    server_uuid = create_server(sim.portal)
    before = datetime.now(UTC).replace(microsecond=0)
    p7m = sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token").content
    certificate = x509.load_pem_x509_certificate(default_certificate_pem().encode())
    plaintext = pkcs7.pkcs7_decrypt_smime(p7m, certificate, rsa_key(), [])
    token = _inner_json(plaintext)
    der = base64.b64decode(p7m.partition(b"\r\n\r\n")[2])
    assert pkcs7.pkcs7_decrypt_der(der, certificate, rsa_key(), []) == plaintext
    expiry = datetime.strptime(token["access_token_expiry"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert expiry.replace(year=expiry.year - 1) >= before
    assert (expiry.replace(year=expiry.year - 1) - before).total_seconds() < 5
    with sim.state.transaction() as session:
        row = session.scalars(select(SimServerToken)).one()
        assert row.access_token == token["access_token"] and row.consumer_secret == token["consumer_secret"]


def test_email_parser_reads_the_outer_layer(sim: RunningSimulator) -> None:
    server_uuid = create_server(sim.portal)
    message = message_from_bytes(sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token").content)
    assert message.get_content_type() == "application/pkcs7-mime"
    assert message.get_filename() == "smime.p7m"
    assert message["Content-Description"] == "S/MIME Encrypted Message"


def test_second_download_revokes_the_first_and_keeps_the_consumer_key_for_the_same_admin(sim: RunningSimulator) -> None:
    server_uuid = create_server(sim.portal)
    certificate = x509.load_pem_x509_certificate(default_certificate_pem().encode())
    first = _inner_json(
        pkcs7.pkcs7_decrypt_smime(
            sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token").content, certificate, rsa_key(), []
        )
    )
    second = _inner_json(
        pkcs7.pkcs7_decrypt_smime(
            sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token").content, certificate, rsa_key(), []
        )
    )
    assert first["access_token"] != second["access_token"]
    assert first["access_secret"] != second["access_secret"] and first["consumer_secret"] != second["consumer_secret"]
    assert first["consumer_key"] == second["consumer_key"]
    with sim.state.transaction() as session:
        rows = {row.access_token: row for row in session.scalars(select(SimServerToken))}
    assert rows[first["access_token"]].revoked_at is not None
    assert rows[second["access_token"]].revoked_at is None


def test_download_by_another_apple_account_is_recorded_and_changes_the_consumer_key(sim: RunningSimulator) -> None:
    server_uuid = create_server(sim.portal)
    sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token")
    response = sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token", params={"apple_id": "other@example.com"})
    assert response.status_code == 200
    with sim.state.transaction() as session:
        first, second = session.scalars(select(SimServerToken).order_by(SimServerToken.id))
    assert first.downloaded_by == "admin@example.com" and second.downloaded_by == "other@example.com"
    assert first.consumer_key != second.consumer_key
    servers = sim.portal.get("/portal/mdm-servers").json()["mdm_servers"]
    assert servers[0]["token"]["downloaded_by"] == "other@example.com"
    assert "consumer_secret" not in str(servers) and second.access_secret not in str(servers)


def test_token_follows_a_replaced_public_key(sim: RunningSimulator) -> None:
    server_uuid = create_server(sim.portal)
    new_key = rsa_key(3072)
    new_pem = certificate_pem(new_key)
    response = sim.portal.put(f"/portal/mdm-servers/{server_uuid}/public-key", json={"public_key_pem": new_pem})
    assert response.status_code == 200
    p7m = sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token").content
    plaintext = pkcs7.pkcs7_decrypt_smime(p7m, x509.load_pem_x509_certificate(new_pem.encode()), new_key, [])
    assert _inner_json(plaintext)["consumer_key"].startswith("CK_")


@pytest.mark.parametrize("apple_id", ["", "not-an-email", "a@b", "x" * 400 + "@example.com"])
def test_download_with_a_malformed_apple_id_is_refused_and_issues_nothing(sim: RunningSimulator, apple_id: str) -> None:
    server_uuid = create_server(sim.portal)
    response = sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token", params={"apple_id": apple_id})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_field"
    with sim.state.transaction() as session:
        assert session.scalars(select(SimServerToken)).first() is None


def test_download_for_an_unknown_or_deleted_server_is_404(sim: RunningSimulator) -> None:
    assert sim.portal.get("/portal/mdm-servers/" + "A" * 32 + "/token").status_code == 404
    server_uuid = create_server(sim.portal)
    assert sim.portal.delete(f"/portal/mdm-servers/{server_uuid}").status_code == 200
    response = sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token")
    assert response.status_code == 404 and response.json()["error"] == "server_not_found"
