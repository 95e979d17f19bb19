"""MDM servers in the portal: creation with a certificate, listing, re-keying, deletion, terms."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from pippin.sim.models import SimDevice, SimDeviceEvent, SimMDMServer
from tests.sim.portal_client import assign, certificate_pem, create_devices, create_server, private_key_pem, rsa_key
from tests.simulator import RunningSimulator


def _server_count(sim: RunningSimulator) -> int:
    with sim.state.transaction() as session:
        return session.scalar(select(func.count()).select_from(SimMDMServer)) or 0


def test_create_returns_a_32_hex_uuid_and_lists_the_server(sim: RunningSimulator) -> None:
    response = sim.portal.post(
        "/portal/mdm-servers",
        json={"name": "Stockholm MDM", "public_key_pem": certificate_pem(), "admin_apple_id": "it@example.com"},
    )
    assert response.status_code == 201
    created = response.json()
    assert re.fullmatch(r"[0-9A-F]{32}", created["server_uuid"]) and created["name"] == "Stockholm MDM"
    (listed,) = sim.portal.get("/portal/mdm-servers").json()["mdm_servers"]
    assert listed["server_uuid"] == created["server_uuid"] and listed["admin_apple_id"] == "it@example.com"
    assert listed["device_count"] == 0 and listed["token"] is None


def _ec_certificate() -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec")])
    now = datetime.now(UTC)
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
    builder = (
        builder.serial_number(1).not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


BAD_PEMS = {
    "garbage": ("hello, this is not a certificate", "not_a_certificate"),
    "binary": ("\x00\x01\x02\xff" * 50, "not_a_certificate"),
    "public_key_pem": (
        rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
        "not_a_certificate",
    ),
    "private_key": (private_key_pem().decode(), "private_key_uploaded"),
    "truncated": (certificate_pem()[:300] + "\n-----END CERTIFICATE-----\n", "not_a_certificate"),
    "two_certificates": (certificate_pem() + certificate_pem(), "not_a_certificate"),
    "expired": (certificate_pem(not_before=datetime.now(UTC) - timedelta(days=10), days=1), "certificate_expired"),
    "not_yet_valid": (certificate_pem(not_before=datetime.now(UTC) + timedelta(days=2)), "certificate_not_yet_valid"),
    "weak_rsa": (certificate_pem(rsa_key(1024)), "unsupported_key"),
    "ec_key": (_ec_certificate(), "unsupported_key"),
}


def test_a_bad_public_key_is_refused_with_a_clear_error_and_nothing_stored(sim: RunningSimulator) -> None:
    for case, (pem, code) in sorted(BAD_PEMS.items()):
        response = sim.portal.post(
            "/portal/mdm-servers", json={"name": "x", "public_key_pem": pem, "admin_apple_id": "a@example.com"}
        )
        assert response.status_code == 400, case
        assert response.json()["error"] == code and response.json()["detail"], case
        body_lines = [line for line in pem.splitlines() if len(line) > 40 and "-----" not in line]
        assert not any(line in response.text for line in body_lines), "the upload is never echoed"
    assert _server_count(sim) == 0


def test_bad_names_and_apple_ids_are_refused(sim: RunningSimulator) -> None:
    for fields in ({"name": ""}, {"name": "a\nb"}, {"admin_apple_id": "nobody"}, {"name": "n" * 300}):
        body = {"name": "ok", "public_key_pem": certificate_pem(), "admin_apple_id": "a@example.com", **fields}
        response = sim.portal.post("/portal/mdm-servers", json=body)
        assert response.status_code == 400 and response.json()["error"] == "invalid_field", fields
    assert _server_count(sim) == 0


def test_replacing_the_public_key_validates_it_first(sim: RunningSimulator) -> None:
    server_uuid = create_server(sim.portal)
    with sim.state.transaction() as session:
        before = session.scalars(select(SimMDMServer.public_key_pem)).one()
    bad = sim.portal.put(f"/portal/mdm-servers/{server_uuid}/public-key", json={"public_key_pem": "nope"})
    assert bad.status_code == 400
    missing = sim.portal.put(
        "/portal/mdm-servers/" + "0" * 32 + "/public-key", json={"public_key_pem": certificate_pem()}
    )
    assert missing.status_code == 404
    with sim.state.transaction() as session:
        assert session.scalars(select(SimMDMServer.public_key_pem)).one() == before


def test_deleting_a_server_denies_its_token_and_releases_its_devices(sim: RunningSimulator) -> None:
    server_uuid = create_server(sim.portal)
    serials = create_devices(sim.portal, 5)
    assign(sim.portal, server_uuid, serials)
    response = sim.portal.delete(f"/portal/mdm-servers/{server_uuid}")
    assert response.status_code == 200 and response.json()["devices_released"] == 5
    with sim.state.transaction() as session:
        server = session.scalars(select(SimMDMServer)).one()
        assert server.access_denied and server.deleted_at is not None
        assert session.scalar(select(func.count()).where(SimDevice.server_id.is_not(None))) == 0
        ops = list(session.scalars(select(SimDeviceEvent.op_type).order_by(SimDeviceEvent.seq)))
    assert ops == ["added"] * 5 + ["deleted"] * 5
    assert sim.portal.get("/portal/mdm-servers").json()["mdm_servers"] == []
    assert len(sim.portal.get("/portal/mdm-servers", params={"include_deleted": True}).json()["mdm_servers"]) == 1
    assert sim.portal.delete(f"/portal/mdm-servers/{server_uuid}").status_code == 404


def test_terms_are_published_and_accepted(sim: RunningSimulator) -> None:
    assert sim.portal.get("/portal/terms").json() == {"terms_pending": False}
    assert sim.portal.post("/portal/terms").json() == {"terms_pending": True}
    with sim.state.transaction() as session:
        assert sim.state.organization(session).terms_pending
    assert sim.portal.post("/portal/terms/accept").json() == {"terms_pending": False}
    assert sim.portal.get("/portal/terms").json() == {"terms_pending": False}
