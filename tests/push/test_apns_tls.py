"""The APNs client on a real wire: HTTP/2 negotiated over TLS, the push certificate presented, one connection
reused, and refused handshakes read for what they are (``tls_apns.TLSAPNs`` serves)."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pippin.push.apns import APNsClient, Notification
from pippin.push.identity import PushIdentity
from pippin.store.models import PushResult
from tests.push.identities import push_identity
from tests.push.tls_apns import Answer, TLSAPNs

TOKEN = "c0ffee" * 10 + "abcd"
EXPIRES = datetime.now(UTC) + timedelta(days=7)


def der(identity: PushIdentity) -> bytes:
    return x509.load_pem_x509_certificate(identity.certificate_pem).public_bytes(serialization.Encoding.DER)


def client_for(server: TLSAPNs, *, trust: bool = True) -> APNsClient:
    return APNsClient(base_url=server.base_url, timeout=30, max_in_flight=8, ca_file=server.ca_file if trust else None)


def test_a_push_goes_over_http2_with_the_push_certificate(tmp_path: Path) -> None:
    identity = push_identity()
    with TLSAPNs(tmp_path, trusted_clients=identity.certificate_pem) as server, client_for(server) as client:
        outcome = client.send(identity, Notification(TOKEN, "MAGIC-TLS", EXPIRES))
    assert (outcome.result, outcome.status, outcome.apns_id) == (
        PushResult.delivered,
        200,
        "00000000-0000-4000-8000-000000000001",
    )
    [received] = server.received
    # Pseudo-headers exist only in HTTP/2: the client spoke it.
    assert (received.headers[":method"], received.headers[":path"]) == ("POST", f"/3/device/{TOKEN}")
    assert received.headers["apns-topic"] == identity.topic
    assert received.headers["apns-push-type"] == "mdm"
    assert received.body == b'{"mdm":"MAGIC-TLS"}'
    assert received.client_certificate == der(identity)


def test_many_pushes_share_one_connection_and_a_renewal_opens_another(tmp_path: Path) -> None:
    first, renewed = push_identity(), push_identity(key_index=2)
    trusted = first.certificate_pem + renewed.certificate_pem
    with TLSAPNs(tmp_path, trusted_clients=trusted) as server, client_for(server) as client:
        outcomes = client.send_all(first, [Notification(f"{i:064x}", "M", EXPIRES) for i in range(60)])
        assert {o.result for o in outcomes} == {PushResult.delivered}
        assert server.connections == 1
        assert client.send(renewed, Notification(TOKEN, "M", EXPIRES)).result is PushResult.delivered
        assert server.connections == 2
    assert sorted(r.path for r in server.received[:60]) == sorted(f"/3/device/{i:064x}" for i in range(60))
    assert server.received[-1].client_certificate == der(renewed)


def test_apns_error_bodies_arrive_and_are_classified(tmp_path: Path) -> None:
    identity = push_identity()

    def unregistered(_path: str, _headers: dict[str, str], _body: bytes) -> Answer:
        body = json.dumps({"reason": "Unregistered", "timestamp": 1_700_000_000_000}).encode()
        return 410, [("apns-id", "gone"), ("content-type", "application/json")], body

    with (
        TLSAPNs(tmp_path, trusted_clients=identity.certificate_pem, answer=unregistered) as server,
        client_for(server) as client,
    ):
        outcome = client.send(identity, Notification(TOKEN, "M", EXPIRES))
    assert (outcome.result, outcome.status, outcome.reason) == (PushResult.token_refused, 410, "Unregistered")
    assert outcome.timestamp == datetime.fromtimestamp(1_700_000_000, UTC)


def test_a_certificate_apns_does_not_accept_is_a_certificate_refusal(tmp_path: Path) -> None:
    accepted, refused = push_identity(), push_identity(key_index=2)
    with TLSAPNs(tmp_path, trusted_clients=accepted.certificate_pem) as server, client_for(server) as client:
        outcome = client.send(refused, Notification(TOKEN, "M", EXPIRES))
    assert (outcome.result, outcome.status, outcome.reason) == (
        PushResult.certificate_refused,
        None,
        "TLSHandshakeFailed",
    )
    assert server.received == []


def test_an_apns_server_certificate_that_is_not_trusted_is_retried_not_blamed_on_ours(tmp_path: Path) -> None:
    identity = push_identity()
    with (
        TLSAPNs(tmp_path, trusted_clients=identity.certificate_pem) as server,
        client_for(server, trust=False) as client,
    ):
        outcome = client.send(identity, Notification(TOKEN, "M", EXPIRES))
    assert (outcome.result, outcome.reason) == (PushResult.retryable, "ServerCertificateNotTrusted")


def test_a_server_that_is_gone_is_retried() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    with APNsClient(base_url=f"https://127.0.0.1:{port}", timeout=30, max_in_flight=2) as client:
        outcome = client.send(push_identity(), Notification(TOKEN, "M", EXPIRES))
    assert (outcome.result, outcome.reason) == (PushResult.retryable, "ConnectError")
