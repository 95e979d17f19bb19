"""The APNs client: what it sends, how it reads each answer, its connection per certificate, its bound in flight.

APNs itself is not here: an ``httpx.MockTransport`` answers, so these tests check Pippin's side of the wire
(headers, body, classification), not Apple's. The TLS identity is built for real from a generated certificate.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pippin.config import Settings
from pippin.errors import InvalidInput
from pippin.push.apns import (
    APNsClient,
    Notification,
    PushCertificateUnusable,
    check_push_magic,
    classify_failure,
    mdm_payload,
    normalise_token,
    tls_context,
)
from pippin.store.models import PushResult
from tests.push.identities import push_identity

TOKEN = "a1" * 32
MAGIC = "6E0A5F3C-0000-4000-8000-1234567890AB"
EXPIRES = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)

Handler = Callable[[httpx.Request], httpx.Response]


class RecordingTransport(httpx.MockTransport):
    """A mock APNs that remembers its requests and whether it was closed."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self.closed = False

        def record(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return handler(request)

        super().__init__(record)

    async def aclose(self) -> None:
        self.closed = True


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"apns-id": "11111111-2222-3333-4444-555555555555"})


def client_with(handler: Handler, **options: object) -> tuple[APNsClient, list[RecordingTransport]]:
    transports: list[RecordingTransport] = []
    contexts: list[ssl.SSLContext] = []

    def open_transport(context: ssl.SSLContext) -> httpx.AsyncBaseTransport:
        contexts.append(context)
        transports.append(RecordingTransport(handler))
        return transports[-1]

    settings = {"base_url": "https://apns.test", "timeout": 5.0, "max_in_flight": 4, **options}
    return APNsClient(open_transport=open_transport, **settings), transports  # type: ignore[arg-type]


def push(token: str = TOKEN) -> Notification:
    return Notification(token, MAGIC, EXPIRES)


def test_a_push_is_an_mdm_post_with_the_topic_priority_and_expiration() -> None:
    identity = push_identity()
    client, transports = client_with(ok)
    with client:
        outcome = client.send(identity, push())
    request = transports[0].requests[0]
    assert request.method == "POST"
    assert str(request.url) == f"https://apns.test/3/device/{TOKEN}"
    assert request.headers["apns-push-type"] == "mdm"
    assert request.headers["apns-priority"] == "10"
    assert request.headers["apns-topic"] == identity.topic
    assert request.headers["apns-expiration"] == str(int(EXPIRES.timestamp()))
    assert request.headers["content-type"] == "application/json"
    assert request.content == b'{"mdm":"' + MAGIC.encode() + b'"}'
    assert "aps" not in json.loads(request.content)
    assert outcome.result is PushResult.delivered
    assert outcome.apns_id == "11111111-2222-3333-4444-555555555555"


def test_the_body_is_exactly_the_push_magic_in_json() -> None:
    assert mdm_payload("X-1") == b'{"mdm":"X-1"}'
    assert json.loads(mdm_payload('quote"back\\slash')) == {"mdm": 'quote"back\\slash'}


def _answer(status: int, reason: str | None = None, **extra: object) -> Handler:
    def handler(_request: httpx.Request) -> httpx.Response:
        body = {"reason": reason, **extra} if reason is not None else None
        return httpx.Response(status, json=body, headers={"apns-id": "id-1"})

    return handler


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (400, "BadDeviceToken", PushResult.token_refused),
        (400, "DeviceTokenNotForTopic", PushResult.token_refused),
        (410, "Unregistered", PushResult.token_refused),
        (403, "BadCertificate", PushResult.certificate_refused),
        (403, "BadCertificateEnvironment", PushResult.certificate_refused),
        (403, "Forbidden", PushResult.certificate_refused),
        (403, "ExpiredProviderToken", PushResult.certificate_refused),
        (429, "TooManyRequests", PushResult.retryable),
        (500, "InternalServerError", PushResult.retryable),
        (503, "ServiceUnavailable", PushResult.retryable),
        (503, "Shutdown", PushResult.retryable),
        (400, "BadTopic", PushResult.request_error),
        (400, "MissingTopic", PushResult.request_error),
        (400, "BadExpirationDate", PushResult.request_error),
        (400, "BadPriority", PushResult.request_error),
        (400, "PayloadEmpty", PushResult.request_error),
        (405, "MethodNotAllowed", PushResult.request_error),
        (413, "PayloadTooLarge", PushResult.request_error),
    ],
)
def test_each_answer_of_apns_is_classified(status: int, reason: str, expected: PushResult) -> None:
    client, _ = client_with(_answer(status, reason))
    with client:
        outcome = client.send(push_identity(), push())
    assert (outcome.result, outcome.status, outcome.reason) == (expected, status, reason)


def test_unregistered_carries_the_time_apns_last_knew_the_token() -> None:
    client, _ = client_with(_answer(410, "Unregistered", timestamp=1_764_000_000_000))
    with client:
        outcome = client.send(push_identity(), push())
    assert outcome.timestamp == datetime.fromtimestamp(1_764_000_000, UTC)


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>bad gateway</html>", b"[1,2]", b'{"reason": 12}', b'{"reason": "\\u001b[31mred"}'],
)
def test_a_body_that_is_not_apns_json_is_tolerated_and_never_stored_raw(body: bytes) -> None:
    client, _ = client_with(lambda _r: httpx.Response(502, content=body))
    with client:
        outcome = client.send(push_identity(), push())
    assert outcome.result is PushResult.retryable
    assert outcome.reason is None or (outcome.reason.isprintable() and "\x1b" not in outcome.reason)


def test_a_very_long_reason_is_clipped() -> None:
    client, _ = client_with(_answer(400, "B" * 5000))
    with client:
        outcome = client.send(push_identity(), push())
    assert outcome.result is PushResult.request_error
    assert outcome.reason is not None and len(outcome.reason) <= 64


def _raising(error: Exception) -> Handler:
    def handler(_request: httpx.Request) -> httpx.Response:
        raise error

    return handler


def _tls_wrapped(kind: type[httpx.TransportError], cause: BaseException) -> httpx.TransportError:
    try:
        raise kind("tls failed") from cause
    except httpx.TransportError as error:
        return error


@pytest.mark.parametrize(
    ("error", "expected", "reason"),
    [
        (httpx.ConnectTimeout("slow"), PushResult.retryable, "Timeout"),
        (httpx.ReadTimeout("slow"), PushResult.retryable, "Timeout"),
        (httpx.ConnectError("refused"), PushResult.retryable, "ConnectError"),
        (httpx.RemoteProtocolError("GOAWAY received"), PushResult.retryable, "RemoteProtocolError"),
        (httpx.ReadError("connection reset"), PushResult.retryable, "ReadError"),
        (
            _tls_wrapped(httpx.ConnectError, ssl.SSLError(1, "[SSL: TLSV1_ALERT_INTERNAL_ERROR] internal error")),
            PushResult.certificate_refused,
            "TLSHandshakeFailed",
        ),
        (
            _tls_wrapped(httpx.ReadError, ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]")),
            PushResult.certificate_refused,
            "TLSHandshakeFailed",
        ),
        (
            _tls_wrapped(httpx.ReadError, ssl.SSLEOFError(8, "EOF occurred in violation of protocol")),
            PushResult.retryable,
            "ReadError",
        ),
        (
            _tls_wrapped(httpx.ConnectError, ssl.SSLCertVerificationError(1, "certificate verify failed")),
            PushResult.retryable,
            "ServerCertificateNotTrusted",
        ),
    ],
)
def test_a_push_without_an_answer_is_classified(error: Exception, expected: PushResult, reason: str) -> None:
    client, _ = client_with(_raising(error))
    with client:
        outcome = client.send(push_identity(), push())
    assert (outcome.result, outcome.status, outcome.reason) == (expected, None, reason)


def test_classify_failure_reads_the_cause_chain() -> None:
    error = _tls_wrapped(httpx.ConnectError, ssl.SSLError(1, "handshake failure"))
    assert classify_failure(error).result is PushResult.certificate_refused


def test_pushes_reuse_one_connection_per_certificate_and_a_renewal_closes_the_old_one() -> None:
    first, renewed = push_identity(key_index=0), push_identity(key_index=2)
    client, transports = client_with(ok)
    with client:
        client.send_all(first, [push("aa"), push("bb")])
        client.send(first, push("cc"))
        assert len(transports) == 1
        client.send(renewed, push("dd"))
        assert len(transports) == 2
        assert transports[0].closed and not transports[1].closed
        assert [r.headers["apns-topic"] for r in transports[1].requests] == [renewed.topic]
    assert transports[1].closed


def test_send_all_keeps_the_order_and_never_has_more_in_flight_than_allowed() -> None:
    limit = 3
    in_flight = 0
    most = 0
    full: asyncio.Event | None = None

    async def handler(request: httpx.Request) -> httpx.Response:
        # Each push waits until the limit is reached once: without a bound, all ten would be in flight together.
        nonlocal in_flight, most, full
        full = full or asyncio.Event()
        in_flight += 1
        most = max(most, in_flight)
        if in_flight == limit:
            full.set()
        await full.wait()
        in_flight -= 1
        return httpx.Response(200, headers={"apns-id": request.url.path.rsplit("/", 1)[1]})

    client, _ = client_with(handler, max_in_flight=limit)  # type: ignore[arg-type]
    tokens = [f"{index:04x}" for index in range(10)]
    with client:
        outcomes = client.send_all(push_identity(), [push(t) for t in tokens])
    assert [o.apns_id for o in outcomes] == tokens
    assert most == limit


def test_a_push_that_outlasts_its_timeout_is_retried_and_the_others_are_not_held_up() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/51ow"):
            await asyncio.Event().wait()  # never answers; the client's timeout ends it
        return httpx.Response(200, headers={"apns-id": "fast"})

    client, _ = client_with(handler, timeout=0.05)  # type: ignore[arg-type]
    with client:
        slow, fast = client.send_all(push_identity(), [push("51ow"), push("fa57")])
    assert (slow.result, slow.reason) == (PushResult.retryable, "Timeout")
    assert fast.result is PushResult.delivered


def test_an_unexpected_failure_of_the_http2_stack_is_one_retryable_push() -> None:
    client, _ = client_with(_raising(KeyError(823)))
    with client:
        outcome = client.send(push_identity(), push())
    assert (outcome.result, outcome.reason) == (PushResult.retryable, "KeyError")


def test_a_closed_client_refuses_and_closing_twice_is_harmless() -> None:
    client, _ = client_with(ok)
    client.send(push_identity(), push())
    client.close()
    client.close()
    with pytest.raises(InvalidInput):
        client.send(push_identity(), push())


def test_the_tls_identity_is_the_push_certificate_and_its_key() -> None:
    context = tls_context(push_identity())
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    # TLS 1.2 only: a refused push certificate is then a handshake alert (see test_apns_tls.py).
    assert context.minimum_version is context.maximum_version is ssl.TLSVersion.TLSv1_2


def test_a_key_of_another_certificate_is_refused_up_front() -> None:
    with pytest.raises(PushCertificateUnusable) as caught:
        tls_context(push_identity(other_key=True))
    assert "private key" in caught.value.message


def test_an_unusable_certificate_is_a_certificate_refusal_of_every_push_and_sends_nothing() -> None:
    client, transports = client_with(ok)
    with client:
        outcomes = client.send_all(push_identity(other_key=True), [push("aa"), push("bb")])
    assert [o.result for o in outcomes] == [PushResult.certificate_refused] * 2
    assert {o.reason for o in outcomes} == {"CertificateUnusable"}
    assert transports == []


def _ca_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Simulated APNs CA")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_the_ca_file_setting_is_the_only_trust_for_apns(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(_ca_pem())
    context = tls_context(push_identity(), ca_file=ca_file)
    assert [dict(entry[0] for entry in ca["subject"]) for ca in context.get_ca_certs()] == [
        {"commonName": "Simulated APNs CA"}
    ]


def test_without_a_ca_file_apns_is_checked_against_a_public_trust_store() -> None:
    assert tls_context(push_identity()).cert_store_stats()["x509_ca"] > 10


def test_the_client_takes_its_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, apns_base_url="https://127.0.0.1:2197/", apns_max_in_flight=7)
    with APNsClient.from_settings(settings) as client:
        assert (client.base_url, client.max_in_flight, client.timeout) == ("https://127.0.0.1:2197", 7, 10.0)


@pytest.mark.parametrize("token", ["", "abc", "zz" * 32, "a" * 202, "a1 b2", "\x1b[31m"])
def test_a_token_that_is_not_hex_is_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_token(token)
    assert token not in caught.value.message or not token


def test_a_token_is_lowercased() -> None:
    assert normalise_token(" A1B2 ") == "a1b2"


@pytest.mark.parametrize("magic", ["", "x" * 201, "tab\there", "é"])
def test_a_bad_push_magic_is_refused(magic: str) -> None:
    with pytest.raises(InvalidInput):
        check_push_magic(magic)


def test_the_push_magic_never_shows_in_a_notification_repr() -> None:
    assert MAGIC not in repr(Notification(TOKEN, MAGIC, EXPIRES + timedelta(0)))
