"""/mdm/scep over HTTP: RFC 8894's operations, GET and POST, hostile bodies refused in plain text (never 500 or 401)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from fastapi.testclient import TestClient

from pippin.config import Settings
from pippin.device.scep import MAX_MESSAGE_BYTES, query_message
from pippin.pki.challenges import EnrollmentBinding, issue_challenge
from pippin.server.errors import RequestTooLarge
from pippin.store.db import transaction
from tests.clocks import Clock
from tests.conftest import fixture_path
from tests.crypto.openssl_tokens import pooled_key_generator
from tests.pki.scep_client import SCEPClient
from tests.servers import build_server, resources_of

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
KEYS = pooled_key_generator()
SCEP = "/mdm/scep"


@pytest.fixture
def http(settings: Settings) -> Iterator[TestClient]:
    server = build_server(settings, clock=Clock(T0))
    with TestClient(server, raise_server_exceptions=False) as client:
        client.app_state = server  # type: ignore[attr-defined]
        yield client
    resources_of(server).engine.dispose()


def _challenge(http: TestClient) -> str:
    resources = resources_of(http.app_state)  # type: ignore[attr-defined]
    with transaction(resources.session_factory) as session:
        return issue_challenge(
            session, binding=EnrollmentBinding(serial_number="SERIAL1"), uses=1, expires_at=T0 + timedelta(hours=1)
        )


def _ca(http: TestClient) -> x509.Certificate:
    answer = http.get(SCEP, params={"operation": "GetCACert", "message": "Pippin"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-x509-ca-cert"
    return x509.load_der_x509_certificate(answer.content)


def test_get_ca_caps_lists_the_rfc_8894_keywords(http: TestClient) -> None:
    answer = http.get(SCEP, params={"operation": "GetCACaps"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text.splitlines() == ["POSTPKIOperation", "SHA-256", "AES", "SCEPStandard", "Renewal"]


def test_get_ca_cert_is_the_same_ca_every_time(http: TestClient) -> None:
    first = _ca(http)
    assert _ca(http) == first
    assert first.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_device_enrolls_by_post(http: TestClient, tmp_path: Path) -> None:
    client = SCEPClient(key=KEYS(), ca=_ca(http), workdir=tmp_path)
    answer = http.post(
        SCEP,
        params={"operation": "PKIOperation"},
        content=client.enroll_request(_challenge(http)),
        headers={"Content-Type": "application/x-pki-message"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-pki-message"
    reply = client.read(answer.content)
    assert (reply.status, reply.transaction_id, reply.recipient_nonce) == (
        "0",
        client.transaction_id,
        client.sender_nonce,
    )
    assert reply.certificate is not None


@pytest.mark.parametrize("escaping", ["escaped", "plus left unescaped"])
def test_a_device_enrolls_by_get_with_a_base64_message(http: TestClient, tmp_path: Path, escaping: str) -> None:
    client = SCEPClient(key=KEYS(), ca=_ca(http), workdir=tmp_path, cipher="3des")
    encoded = base64.b64encode(client.enroll_request(_challenge(http))).decode()
    message = quote(encoded, safe="") if escaping == "escaped" else encoded.replace("/", "%2F").replace("=", "%3D")
    answer = http.get(f"{SCEP}?operation=PKIOperation&message={message}")
    assert answer.status_code == 200
    assert client.read(answer.content).status == "0"


def test_a_spent_challenge_gets_a_failure_cert_rep(http: TestClient, tmp_path: Path) -> None:
    ca = _ca(http)
    challenge = _challenge(http)
    for index, status in enumerate(["0", "2"]):
        client = SCEPClient(key=KEYS(), ca=ca, workdir=tmp_path / str(index))
        answer = http.post(SCEP, params={"operation": "PKIOperation"}, content=client.enroll_request(challenge))
        assert answer.status_code == 200
        assert client.read(answer.content).status == status


def test_a_real_device_request_to_another_ca_gets_failure_not_an_error(http: TestClient, tmp_path: Path) -> None:
    request = fixture_path("commandment", "mdmclient-PKIOperation.der").read_bytes()
    answer = http.post(SCEP, params={"operation": "PKIOperation"}, content=request)
    assert answer.status_code == 200
    reply = SCEPClient(key=KEYS(), ca=_ca(http), workdir=tmp_path, digest="sha512").read(answer.content)
    assert (reply.status, reply.fail_info) == ("2", "1")


@pytest.mark.parametrize(
    "body",
    [b"", b"garbage" * 100, b"\x30\x80" * 30_000, b"\x30\x82\xff\xff\x02\x01", b"\x00" * 10],
    ids=["empty", "garbage", "ber bomb", "truncated", "zeros"],
)
def test_unreadable_messages_are_refused_with_400_in_plain_text(http: TestClient, body: bytes) -> None:
    answer = http.post(SCEP, params={"operation": "PKIOperation"}, content=body)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/plain")
    assert len(answer.text) < 200


def test_a_truncated_real_request_is_refused_with_400(http: TestClient) -> None:
    request = fixture_path("commandment", "mdmclient-PKIOperation.der").read_bytes()
    answer = http.post(SCEP, params={"operation": "PKIOperation"}, content=request[:-10])
    assert answer.status_code == 400


def test_an_oversized_message_is_refused_before_it_is_parsed(http: TestClient) -> None:
    answer = http.post(SCEP, params={"operation": "PKIOperation"}, content=b"\x30\x80" * MAX_MESSAGE_BYTES)
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("size", [MAX_MESSAGE_BYTES + 1, 3 * MAX_MESSAGE_BYTES])
def test_an_oversized_get_message_is_refused(size: int) -> None:
    # Past what an HTTP client sends in a URL, so the route's reader is called as the route calls it.
    with pytest.raises(RequestTooLarge):
        query_message(base64.b64encode(b"\x00" * size).decode())


@pytest.mark.parametrize("message", ["", "not base64!", "%%%", "AAAA*"])
def test_a_get_message_that_is_not_base64_is_refused(http: TestClient, message: str) -> None:
    answer = http.get(SCEP, params={"operation": "PKIOperation", "message": message})
    assert answer.status_code == 400


@pytest.mark.parametrize("operation", [None, "GetNextCACert", "getcacaps", "PKIOperation\x00", "x" * 5000])
def test_an_unknown_operation_is_refused_with_400(http: TestClient, operation: str | None) -> None:
    params = {} if operation is None else {"operation": operation}
    for method in ("GET", "POST"):
        answer = http.request(method, SCEP, params=params)
        assert answer.status_code == 400
        assert answer.headers["content-type"].startswith("text/plain")


def test_other_methods_are_not_allowed(http: TestClient) -> None:
    assert http.put(SCEP, params={"operation": "GetCACaps"}).status_code == 405
