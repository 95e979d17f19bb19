"""Pippin's pushes through the simulated APNs's faults: no push that can be delivered is lost, and none that
cannot is tried again.

Real HTTP/2 over TLS with a push certificate the simulated portal issued. The simulator answers a share of the
pushes with 429, 500, 503, a dropped connection, a GOAWAY or a slow answer past Pippin's timeout; some devices
gave their token up (410 Unregistered) and some tokens were never issued (400 BadDeviceToken). Pippin's sender
runs round after round on its own clock, which moves past each backoff, until nothing is due. On SQLite and
PostgreSQL, like every database test.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from pippin.config import Settings
from pippin.crypto.keys import generate_private_key
from pippin.crypto.pem import fingerprint
from pippin.crypto.secrets import SecretBox
from pippin.push.apns import APNsClient
from pippin.push.certificate import topic_of
from pippin.push.delivery import SendReport, request_pushes, send_due_pushes
from pippin.push.device_status import get_device_push_status
from pippin.push.identity import PushIdentity
from pippin.push.request import build_csr, build_signed_request
from pippin.push.schemas import PushCertificateStatus, TokenState
from pippin.push.status import read_status
from pippin.server.resources import build_resources
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import Enrollment, EnrollmentStatus, utcnow
from tests.push.apple_ca import authority
from tests.push.conftest import activate
from tests.simulator import RunningSimulator, run_simulator

DELIVERABLE, GONE, NEVER_ISSUED = 30, 5, 3
FAULTS = {
    "seed": 11,
    "latency_seconds": 2.0,
    "rates": {
        "post_apns_device": {
            "too_many_requests": 0.08,
            "internal_server_error": 0.06,
            "service_unavailable": 0.06,
            "shutdown": 0.03,
            "dropped_connection": 0.04,
            "goaway": 0.04,
            "latency": 0.03,
        }
    },
}


@pytest.fixture
def apple(tmp_path: Path) -> Iterator[RunningSimulator]:
    with run_simulator(tmp_path / "sim", with_apns=True) as running:
        yield running


def _portal_identity(portal: httpx.Client) -> PushIdentity:
    """A push certificate from the simulated Push Certificates Portal, as `pippin push csr` and upload get one."""
    key = generate_private_key()
    vendor = portal.post("/portal/push/vendor-certificates", json={}).json()
    vendor_key = serialization.load_pem_private_key(vendor["private_key_pem"].encode(), password=None)
    request = build_signed_request(build_csr(key), vendor_key=vendor_key, chain_pem=vendor["chain_pem"])  # type: ignore[arg-type]
    issued = portal.post("/portal/push/certificates", json={"apple_id": "it@example.com", "request": request.decode()})
    assert issued.status_code == 201, issued.text
    certificate = x509.load_pem_x509_certificate(issued.json()["certificate_pem"].encode())
    assert topic_of(certificate) == issued.json()["topic"]
    return PushIdentity(
        topic=issued.json()["topic"],
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        not_after=certificate.not_valid_after_utc,
        fingerprint=fingerprint(certificate),
    )


def test_faults_lose_no_deliverable_push_and_repeat_no_refused_one(
    apple: RunningSimulator, session_factory: SessionFactory, settings: Settings
) -> None:
    assert apple.apns is not None
    identity = _portal_identity(apple.portal)
    tokens = [
        apple.portal.post("/apns/tokens", json={"topic": identity.topic}).json()["token"]
        for _ in range(DELIVERABLE + GONE)
    ]
    for token in tokens[DELIVERABLE:]:
        assert apple.portal.delete(f"/apns/tokens/{token}").status_code == 200
    tokens += [f"{random.Random(index).getrandbits(256):064x}" for index in range(NEVER_ISSUED)]
    udids = [f"UDID-{index:04d}" for index in range(len(tokens))]
    now = utcnow()
    with transaction(session_factory) as session:
        for udid, token in zip(udids, tokens, strict=True):
            session.add(
                Enrollment(
                    udid=udid,
                    status=EnrollmentStatus.enrolled,
                    first_contact_at=now,
                    enrolled_at=now,
                    push_token=token,
                    push_magic=f"MAGIC-{udid}",
                )
            )
        request_pushes(session, udids=udids, settings=settings, now=now)
    assert apple.portal.put("/portal/faults", json=FAULTS).status_code == 200

    # A slow answer (2 s) passes Pippin's timeout and is tried again, like any dropped push.
    tuned = settings.model_copy(
        update={"apns_base_url": apple.apns.url, "apns_ca_file": apple.apns.ca_path, "apns_timeout": 1.0}
    )
    clock = [now]

    def send_due(client: APNsClient, rng: random.Random) -> SendReport:
        return send_due_pushes(
            session_factory,
            sender=client,
            load_identity=lambda _session: identity,
            record_certificate_refusal=lambda _session, fingerprint, reason: pytest.fail(reason),
            settings=tuned,
            clock=lambda: clock[0],
            rng=rng,
        )

    rounds = 0
    with APNsClient.from_settings(tuned) as client:
        while True:
            report = send_due(client, random.Random(rounds))
            rounds += 1
            with transaction(session_factory) as session:
                pending = [udid for udid in udids if get_device_push_status(session, udid=udid).pending]
            if not pending:
                break
            assert rounds < 12, f"still pending after {rounds} rounds: {pending}"
            clock[0] += timedelta(hours=2)  # past the longest backoff (an hour)
    assert report.waiting_for_certificate is False

    # Every device that can be reached has its push waiting at APNs (stored for it until it connects).
    for udid, token in zip(udids[:DELIVERABLE], tokens[:DELIVERABLE], strict=True):
        arrived = apple.portal.get(f"/apns/tokens/{token}/next", params={"timeout": 0})
        assert (arrived.status_code, arrived.json()) == (200, {"mdm": f"MAGIC-{udid}"}), udid
    # Each refused token was taken as refused on the first refusal Pippin read (an answer lost with its
    # connection, or past the timeout, is tried again like any other), and marked so.
    with transaction(session_factory) as session:
        status = [get_device_push_status(session, udid=udid) for udid in udids]
    assert [s.token_state for s in status] == [TokenState.valid] * DELIVERABLE + [TokenState.refused] * (
        GONE + NEVER_ISSUED
    )
    assert [s.counts.token_refused for s in status] == [0] * DELIVERABLE + [1] * (GONE + NEVER_ISSUED)
    assert rounds > 1  # the faults made Pippin try again

    # Asked again, without faults: every reachable device is pushed once more, no refused token ever again.
    assert apple.portal.put("/portal/faults", json={}).status_code == 200
    before = apple.portal.get("/apns/stats").json()
    with transaction(session_factory) as session:
        request_pushes(session, udids=udids, settings=tuned, now=clock[0])
    with APNsClient.from_settings(tuned) as client:
        send_due(client, random.Random(rounds))
    after = apple.portal.get("/apns/stats").json()
    assert after["rejected"] == before["rejected"]
    assert after["received"] - before["received"] == DELIVERABLE


def test_a_certificate_apns_refuses_stops_pushes_until_another_is_uploaded(
    tmp_path: Path, engine: Engine, session_factory: SessionFactory, settings: Settings
) -> None:
    """The server's own wiring: APNs's 403 is recorded in the certificate store, which then hands out no
    certificate, so pushes wait (not fail, not retried against APNs) until a renewal is uploaded."""
    _, root, _, intermediate = authority()
    with run_simulator(tmp_path / "sim", trusted_push_cas=lambda: [root, intermediate]) as apple:
        assert apple.apns is not None
        tuned = settings.model_copy(update={"apns_base_url": apple.apns.url, "apns_ca_file": apple.apns.ca_path})
        box = SecretBox.from_settings(tuned)
        topic = activate(session_factory, box).subject.get_attributes_for_oid(NameOID.USER_ID)[0].value
        token = apple.portal.post("/apns/tokens", json={"topic": topic}).json()["token"]
        with transaction(session_factory) as session:
            session.add(Enrollment(udid="UDID-1", status=EnrollmentStatus.enrolled, push_token=token, push_magic="M-1"))
            request_pushes(session, udids=["UDID-1"], settings=tuned)
        refusal = {"post_apns_device_responses": [{"count": 1, "response": "bad_certificate"}]}
        assert apple.portal.put("/portal/faults", json=refusal).status_code == 200
        with APNsClient.from_settings(tuned) as client:
            resources = build_resources(tuned, engine, apns=client)

            def send_due() -> SendReport:
                return send_due_pushes(
                    session_factory,
                    sender=client,
                    load_identity=resources.load_push_identity,
                    record_certificate_refusal=resources.record_push_certificate_refusal,
                    settings=tuned,
                )

            send_due()
            with transaction(session_factory) as session:
                status = read_status(session)
                assert (status.status, status.refused_reason) == (
                    PushCertificateStatus.refused_by_apns,
                    "BadCertificate",
                )
                assert get_device_push_status(session, udid="UDID-1").pending
            received = apple.portal.get("/apns/stats").json()["received"]
            assert send_due().waiting_for_certificate is True
            assert apple.portal.get("/apns/stats").json()["received"] == received  # nothing sent meanwhile

            activate(session_factory, box, topic=str(topic))  # the renewal: same topic, a new certificate
            send_due()
        with transaction(session_factory) as session:
            assert read_status(session).status == PushCertificateStatus.active
            assert not get_device_push_status(session, udid="UDID-1").pending
        arrived = apple.portal.get(f"/apns/tokens/{token}/next", params={"timeout": 0})
        assert (arrived.status_code, arrived.json()) == (200, {"mdm": "M-1"})
