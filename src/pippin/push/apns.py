"""The APNs client: MDM pushes over HTTP/2 with the push certificate, each answer classified into an outcome.

One request per push (reference ``apple-mdm-protocol.md`` section 5): ``POST {base}/3/device/{token}`` with body
exactly ``{"mdm":"<PushMagic>"}``, ``apns-push-type: mdm``, ``apns-priority: 10``, the certificate's topic, and
always an ``apns-expiration``: without one APNs tries the device once and forgets the push (the 2026 updates,
section 4 item 13: Fleet's pushes that hung).

The client keeps one HTTP/2 connection pool per certificate (its fingerprint) and reuses it for every push; a
renewed certificate gets a new pool and the old one is closed. At most ``max_in_flight`` pushes are in flight at
once, each within ``timeout``. The client never retries: it tells what happened (:class:`PushOutcome`), and the
delivery service (``push/delivery.py``) decides what to do next, with its state in the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import certifi
import httpx

from pippin.config import Settings
from pippin.errors import ConfigurationError, InvalidInput
from pippin.printable import printable
from pippin.push.identity import PushIdentity
from pippin.store.models import PushResult

logger = logging.getLogger(__name__)

#: Apple's device tokens are 32 bytes today and documented as variable; the column holds up to 100 bytes.
MAX_TOKEN_HEX = 200
MAX_PUSH_MAGIC = 200
_REASON_CHARS = 64
_MAX_ERROR_BODY = 65536

#: 400 and 410 reasons that say the token will never work for this topic again.
TOKEN_REFUSALS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered", "ExpiredToken"})

#: Opens the HTTP transport for one certificate's TLS context; tests pass one over ``httpx.MockTransport``.
TransportFactory = Callable[[ssl.SSLContext], httpx.AsyncBaseTransport]


class PushCertificateUnusable(ConfigurationError):
    """The stored push certificate and key cannot make a TLS identity (a key of another certificate, bad PEM)."""

    code = "push_certificate_unusable"


@dataclass(frozen=True)
class Notification:
    """One MDM push: where it goes, what it carries, and until when APNs should keep it for an offline device."""

    #: Lowercase hex of the device's TokenUpdate ``Token``.
    token: str
    #: The device's PushMagic: only its MDM client acts on it; never logged.
    push_magic: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True)
class PushOutcome:
    """What APNs (or the network) answered to one push."""

    result: PushResult
    #: The HTTP status, when APNs answered at all.
    status: int | None = None
    #: APNs's ``reason`` (``BadDeviceToken``…), or the kind of failure when there was no answer (``Timeout``).
    reason: str | None = None
    apns_id: str | None = None
    #: For 410: when APNs last knew the token valid (its ``timestamp``, milliseconds since 1970).
    timestamp: datetime | None = None


def normalise_token(text: str) -> str:
    """A device token as APNs's path takes it (lowercase hex), or :class:`InvalidInput` saying what is wrong."""
    token = text.strip().lower()
    if not token or len(token) > MAX_TOKEN_HEX or len(token) % 2 or any(c not in "0123456789abcdef" for c in token):
        raise InvalidInput(
            f"The device token must be hexadecimal: an even number of 0-9 and a-f, at most {MAX_TOKEN_HEX} characters.",
            hint="Give the token as the device sent it in TokenUpdate, hex-encoded (64 characters for 32 bytes).",
        )
    return token


def check_push_magic(text: str) -> str:
    """A PushMagic fit for the JSON body and the database, or :class:`InvalidInput` (the value never echoed)."""
    if not text or len(text) > MAX_PUSH_MAGIC or not text.isprintable() or not text.isascii():
        raise InvalidInput(
            f"The PushMagic must be 1 to {MAX_PUSH_MAGIC} printable ASCII characters.",
            hint="Give the PushMagic the device sent in TokenUpdate (a UUID such as 6E0A...-...).",
        )
    return text


def mdm_payload(push_magic: str) -> bytes:
    """The body APNs delivers to the device's MDM client: exactly ``{"mdm":"<PushMagic>"}``, no ``aps``."""
    return json.dumps({"mdm": push_magic}, separators=(",", ":")).encode()


def push_headers(topic: str, expires_at: datetime) -> dict[str, str]:
    """The headers of an MDM push (reference section 5, with the 2026 correction: always an expiration)."""
    return {
        "apns-push-type": "mdm",
        "apns-priority": "10",
        "apns-topic": topic,
        "apns-expiration": str(max(1, int(expires_at.timestamp()))),
        "content-type": "application/json",
    }


def _short(text: object) -> str | None:
    """Text from the other side, made safe to store and log: printable, clipped."""
    if not isinstance(text, str) or not text:
        return None
    return printable(text[:_REASON_CHARS])


def _error_body(response: httpx.Response) -> tuple[str | None, datetime | None]:
    """APNs's ``{"reason": ..., "timestamp": ...}``, tolerating anything else (a proxy's HTML page, nothing)."""
    try:
        body = json.loads(response.content[:_MAX_ERROR_BODY])
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    timestamp = body.get("timestamp")
    when = None
    if isinstance(timestamp, int) and not isinstance(timestamp, bool) and 0 < timestamp < 2**53:
        try:
            when = datetime.fromtimestamp(timestamp / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            when = None
    return _short(body.get("reason")), when


def classify_response(response: httpx.Response) -> PushOutcome:
    """APNs's answer as an outcome: accepted, token refused, certificate refused, try again, or our mistake."""
    status = response.status_code
    if status == 200:
        return PushOutcome(PushResult.delivered, status=status, apns_id=_short(response.headers.get("apns-id")))
    reason, timestamp = _error_body(response)
    apns_id = _short(response.headers.get("apns-id"))
    if status == 410 or (status == 400 and reason in TOKEN_REFUSALS):
        return PushOutcome(PushResult.token_refused, status, reason or "Unregistered", apns_id, timestamp)
    if status == 403:
        # BadCertificate, BadCertificateEnvironment, Forbidden, ExpiredProviderToken: the certificate, not the push.
        return PushOutcome(PushResult.certificate_refused, status, reason, apns_id)
    if status == 429 or status >= 500:
        return PushOutcome(PushResult.retryable, status, reason, apns_id)
    # BadTopic, MissingTopic, BadExpirationDate, BadPriority, PayloadEmpty, 405, 413: the request was wrong.
    return PushOutcome(PushResult.request_error, status, reason, apns_id)


def _caused_by(error: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def classify_failure(error: httpx.HTTPError) -> PushOutcome:
    """A push that got no answer: a refused TLS handshake is the certificate's; the network's failures retry."""
    if isinstance(error, httpx.TimeoutException):
        return PushOutcome(PushResult.retryable, reason="Timeout")
    if _caused_by(error, ssl.SSLCertVerificationError) is not None:
        # APNs's own certificate is not trusted here (PIPPIN_APNS_CA_FILE): nothing wrong with our certificate.
        return PushOutcome(PushResult.retryable, reason="ServerCertificateNotTrusted")
    tls_error = _caused_by(error, ssl.SSLError)
    if tls_error is not None and not isinstance(tls_error, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        # An expired or revoked push certificate shows as a TLS alert (micromdm #150): during the handshake, or
        # with TLS 1.3 at the first read, since the server checks the client's certificate after the client
        # has finished. A connection merely cut (EOF) is the network's and retries.
        return PushOutcome(PushResult.certificate_refused, reason="TLSHandshakeFailed")
    if isinstance(error, httpx.TransportError):
        # Refused or reset connections, GOAWAY, a stream reset: APNs asks us to come back.
        return PushOutcome(PushResult.retryable, reason=type(error).__name__)
    return PushOutcome(PushResult.request_error, reason=type(error).__name__)


def _no_password() -> bytes:
    # The key is stored unencrypted inside the sealed secret; without a callback OpenSSL would prompt on a terminal.
    return b""


@contextmanager
def _pem_file(pem: bytes) -> Iterator[str]:
    """A path OpenSSL can open holding ``pem``: an anonymous in-memory file where Linux has them, else a
    private temporary file (mode 0600) removed as soon as OpenSSL has read it."""
    if hasattr(os, "memfd_create"):
        descriptor = os.memfd_create("pippin-push-identity", os.MFD_CLOEXEC)
        try:
            view = memoryview(pem)
            while view:
                view = view[os.write(descriptor, view) :]
            yield f"/proc/self/fd/{descriptor}"
        finally:
            os.close(descriptor)
        return
    descriptor, path = tempfile.mkstemp(prefix="pippin-push-", suffix=".pem")  # mkstemp creates it 0600
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        yield path
    finally:
        Path(path).unlink(missing_ok=True)


def tls_context(identity: PushIdentity, *, ca_file: Path | None = None) -> ssl.SSLContext:
    """The TLS client context for APNs: the push certificate and key as client identity, APNs's server
    certificate checked against ``ca_file`` or the system's trust store (certifi's when the system has none)."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if ca_file is None and not context.cert_store_stats().get("x509_ca"):
        context.load_verify_locations(cafile=certifi.where())
    # TLS 1.2, which APNs supports: there the server judges the client certificate inside the handshake, so a
    # refused push certificate is a handshake alert. With TLS 1.3 the client's handshake ends first and the
    # refusal arrives as a cut connection at the first write, which looks like any dropped connection.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    pem = identity.certificate_pem.rstrip(b"\n") + b"\n" + identity.private_key_pem
    try:
        with _pem_file(pem) as path:
            context.load_cert_chain(path, password=_no_password)
    except (ssl.SSLError, OSError):
        raise PushCertificateUnusable(
            "The push certificate and its private key cannot be used together for TLS.",
            hint="Upload the push certificate again with the private key it was issued for.",
        ) from None
    return context


def http2_transport(context: ssl.SSLContext) -> httpx.AsyncBaseTransport:
    """HTTP/2 only (APNs speaks nothing else) over one connection, which carries every push as its own stream."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.AsyncHTTPTransport(verify=context, http1=False, http2=True, limits=limits)


@dataclass
class _Pool:
    fingerprint: str
    client: httpx.AsyncClient


class APNsClient:
    """Sends MDM pushes to APNs; one connection per certificate, at most ``max_in_flight`` pushes at once.

    The connection lives on an event loop of the client's own (a daemon thread started with it): HTTP/2's
    multiplexed streams are driven from one loop, never from several threads at once (httpcore's synchronous
    HTTP/2 connection is not safe for that). Callers on any thread get plain blocking calls.
    """

    def __init__(
        self,
        *,
        base_url: str,
        timeout: float,
        max_in_flight: int,
        ca_file: Path | None = None,
        open_transport: TransportFactory | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise InvalidInput("At least one push must be allowed in flight.", hint="Set PIPPIN_APNS_MAX_IN_FLIGHT=20.")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.ca_file = ca_file
        self._open_transport = open_transport or http2_transport
        self._pool: _Pool | None = None
        self._lock = threading.Lock()
        self._closed = False
        # Started with the first push, so a client that never pushes (most commands, most tests) holds no thread.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._in_flight: asyncio.Semaphore | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, open_transport: TransportFactory | None = None) -> APNsClient:
        return cls(
            base_url=settings.apns_base_url,
            timeout=settings.apns_timeout,
            max_in_flight=settings.apns_max_in_flight,
            ca_file=settings.apns_ca_file,
            open_transport=open_transport,
        )

    def _client_for(self, identity: PushIdentity) -> tuple[httpx.AsyncClient, _Pool | None, asyncio.AbstractEventLoop]:
        """The pool of ``identity``'s certificate, the one it replaced (a renewal, for the caller to close), and
        the loop both live on."""
        with self._lock:
            if self._closed:
                raise InvalidInput("The APNs client is closed.", hint="Open a new one.")
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="pippin-apns", daemon=True)
                self._thread.start()
            loop = self._loop
            if self._pool is not None and self._pool.fingerprint == identity.fingerprint:
                return self._pool.client, None, loop
            context = tls_context(identity, ca_file=self.ca_file)
            client = httpx.AsyncClient(
                transport=self._open_transport(context),
                base_url=self.base_url,
                timeout=httpx.Timeout(self.timeout),
            )
            old, self._pool = self._pool, _Pool(identity.fingerprint, client)
        if old is not None:
            logger.info("push certificate changed; new APNs connection", extra={"fields": {"topic": identity.topic}})
        return client, old, loop

    def send(self, identity: PushIdentity, notification: Notification) -> PushOutcome:
        """Send one push now and classify the answer; never raises for what APNs or the network did."""
        return self.send_all(identity, [notification])[0]

    def send_all(self, identity: PushIdentity, notifications: Sequence[Notification]) -> list[PushOutcome]:
        """Send the pushes, at most ``max_in_flight`` at once over one connection; outcomes in the same order."""
        if not notifications:
            return []
        try:
            client, replaced, loop = self._client_for(identity)
        except PushCertificateUnusable:
            return [PushOutcome(PushResult.certificate_refused, reason="CertificateUnusable") for _ in notifications]
        work = self._send_all(client, replaced, identity.topic, list(notifications))
        return asyncio.run_coroutine_threadsafe(work, loop).result()

    async def _send_all(
        self, client: httpx.AsyncClient, replaced: _Pool | None, topic: str, notifications: list[Notification]
    ) -> list[PushOutcome]:
        if replaced is not None:
            await replaced.client.aclose()
        if self._in_flight is None:
            self._in_flight = asyncio.Semaphore(self.max_in_flight)
        return list(await asyncio.gather(*(self._bounded(client, topic, item) for item in notifications)))

    async def _bounded(self, client: httpx.AsyncClient, topic: str, notification: Notification) -> PushOutcome:
        assert self._in_flight is not None
        async with self._in_flight:
            try:
                outcome = await asyncio.wait_for(self._post(client, topic, notification), self.timeout)
            except TimeoutError:
                outcome = PushOutcome(PushResult.retryable, reason="Timeout")
        if outcome.result is PushResult.request_error:
            # Apple says the request itself is wrong: a bug in Pippin, worth an operator's look.
            fields = {"status": outcome.status, "reason": outcome.reason, "token": notification.token[:8]}
            logger.error("APNs refused a push as malformed", extra={"fields": fields})
        return outcome

    async def _post(self, client: httpx.AsyncClient, topic: str, notification: Notification) -> PushOutcome:
        try:
            response = await client.post(
                f"/3/device/{notification.token}",
                content=mdm_payload(notification.push_magic),
                headers=push_headers(topic, notification.expires_at),
            )
        except httpx.HTTPError as error:
            return classify_failure(error)
        except Exception as error:  # a failure of the HTTP/2 stack itself: this push retries, the others go on
            logger.warning("push failed inside the HTTP/2 client", extra={"fields": {"error": type(error).__name__}})
            return PushOutcome(PushResult.retryable, reason=type(error).__name__[:64])
        return classify_response(response)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if pool is not None:
            asyncio.run_coroutine_threadsafe(pool.client.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def __enter__(self) -> APNsClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
