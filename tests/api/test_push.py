"""``/api/v1/push``: statuses, shapes and downloads; the services decide (tests/push)."""

from __future__ import annotations

import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select
from starlette.applications import Starlette

from pippin.crypto.keys import generate_private_key
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import AuditEvent
from tests.push.apple_ca import (
    authority,
    issue_push_certificate,
    issue_vendor_certificate,
    new_topic,
    pem,
    read_signed_request,
)
from tests.servers import mounted_app

VENDOR_KEY = generate_private_key()
APPLE_ID = "admin@example.com"


def _vendor_files() -> dict[str, tuple[str, bytes]]:
    _, root, _, intermediate = authority()
    key = VENDOR_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "certificate": ("mdm.pem", pem(issue_vendor_certificate(VENDOR_KEY))),
        "key": ("mdm.key", key),
        "chain": ("chain.pem", pem(intermediate, root)),
    }


def _upload(client: TestClient, auth: dict[str, str], data: bytes, **form: str) -> Response:
    return client.put(
        "/api/v1/push/certificate",
        headers=auth,
        files={"certificate": ("push.pem", data)},
        data={"apple_id": APPLE_ID, **form},
    )


def test_the_whole_flow_through_the_api(client: TestClient, auth: dict[str, str], resources: ServerResources) -> None:
    assert client.get("/api/v1/push/certificate", headers=auth).json()["status"] == "not_started"
    imported = client.put("/api/v1/push/vendor", headers=auth, files=_vendor_files())
    assert imported.status_code == 200, imported.text
    assert imported.json()["vendor"]["chain_length"] == 2 and imported.json()["warnings"] == []

    request = client.post("/api/v1/push/certificate/request", headers=auth)
    assert request.status_code == 200, request.text
    assert request.headers["x-pippin-request-kind"] == "signed_request"
    assert request.headers["content-disposition"] == 'attachment; filename="pippin-push-request.plist.b64"'
    csr, chain = read_signed_request(request.content)
    assert len(chain) == 3

    plain = client.post("/api/v1/push/certificate/request?unsigned=true", headers=auth)
    assert plain.headers["x-pippin-request-kind"] == "csr" and plain.headers["content-type"] == "application/pkcs10"
    assert x509.load_pem_x509_csr(plain.content) == csr

    topic = new_topic()
    uploaded = _upload(client, auth, pem(issue_push_certificate(plain.content, topic=topic)))
    assert uploaded.status_code == 200, uploaded.text
    body = uploaded.json()
    assert body["certificate"]["status"] == "active" and body["certificate"]["topic"] == topic
    assert body["renewal"] is False and body["topic_replaced"] is False

    status = client.get("/api/v1/push/certificate", headers=auth).json()
    assert status["topic"] == topic and status["apple_id"] == APPLE_ID and status["vendor"]["expiry_level"] == "ok"
    for answer in (imported, request, plain, uploaded, client.get("/api/v1/push/certificate", headers=auth)):
        assert "PRIVATE KEY" not in answer.text
    with transaction(resources.session_factory) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.interface == "api").order_by(AuditEvent.id))
        actions = [(event.actor, event.action) for event in events]
    assert actions == [
        ("test-admin", "push.vendor.import"),
        ("test-admin", "push.request.create"),
        ("test-admin", "push.request.create"),
        ("test-admin", "push.certificate.upload"),
    ]


def test_refusals_have_their_statuses_and_say_what_the_file_is(client: TestClient, auth: dict[str, str]) -> None:
    foreign = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(VENDOR_KEY, hashes.SHA256())
    nothing = _upload(client, auth, pem(issue_push_certificate(foreign.public_bytes(serialization.Encoding.PEM))))
    assert nothing.status_code == 409 and "no push certificate request" in nothing.json()["message"]
    csr = client.post("/api/v1/push/certificate/request", headers=auth)
    assert csr.headers["x-pippin-request-kind"] == "csr"
    cases = {
        os.urandom(3000): (400, "neither a PEM nor a DER certificate"),
        csr.content: (400, "a certificate signing request (CSR)"),
        b"x" * 100_001: (413, "larger than 100,000 bytes"),
    }
    for data, (status, words) in cases.items():
        answer = _upload(client, auth, data)
        assert answer.status_code == status, answer.text
        assert words in answer.json()["message"]
    bad_id = _upload(client, auth, pem(issue_push_certificate(csr.content)), apple_id="not an address")
    assert bad_id.status_code == 400 and "The Apple ID is not an e-mail address" in bad_id.json()["message"]

    topic = new_topic()
    assert _upload(client, auth, pem(issue_push_certificate(csr.content, topic=topic))).status_code == 200
    renewal = client.post("/api/v1/push/certificate/request", headers=auth)
    other = _upload(client, auth, pem(issue_push_certificate(renewal.content)))
    assert other.status_code == 409
    assert f"topic {topic}" in other.json()["hint"]
    assert client.get("/api/v1/push/certificate", headers=auth).json()["topic"] == topic
    replaced = _upload(client, auth, pem(issue_push_certificate(renewal.content)), replace_topic="true")
    assert replaced.status_code == 200 and replaced.json()["topic_replaced"] is True

    bad_key = client.put(
        "/api/v1/push/vendor", headers=auth, files={**_vendor_files(), "key": ("k.pem", os.urandom(500))}
    )
    assert bad_key.status_code == 400 and "not a PEM or DER private key" in bad_key.json()["message"]


def test_the_description_documents_the_statuses_and_kinds(app: Starlette) -> None:
    spec = mounted_app(app, "").openapi()
    schemas = spec["components"]["schemas"]
    assert set(schemas["PushCertificateStatus"]["enum"]) == {
        "not_started",
        "awaiting_certificate",
        "active",
        "expiring",
        "expiring_soon",
        "expired",
        "refused_by_apns",
    }
    paths = spec["paths"]
    assert {"/api/v1/push/certificate", "/api/v1/push/certificate/request", "/api/v1/push/vendor"} <= set(paths)
    assert "409" in paths["/api/v1/push/certificate"]["put"]["responses"]
    described = paths["/api/v1/push/certificate/request"]["post"]["responses"]["200"]["description"]
    assert "signed_request" in described and "csr" in described
