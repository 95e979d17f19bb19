"""One POST of a webhook body to the receiver, and what its answer means for the event.

The deliverer (``mdm/webhook_delivery.py``) hands over the exact bytes to send; this module adds the headers (the
HMAC signature when ``PIPPIN_WEBHOOK_SECRET`` is set), posts within ``PIPPIN_WEBHOOK_TIMEOUT``, follows no
redirect and never reads the receiver's body (a hostile receiver cannot make Pippin hold gigabytes). The URL is
never logged or repeated in an error: it may carry a password or a token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Protocol

import httpx

from pippin import __version__

#: The header carrying ``sha256=<hex HMAC-SHA256 of the exact body under PIPPIN_WEBHOOK_SECRET>``.
SIGNATURE_HEADER = "X-Pippin-Signature"
CONTENT_TYPE = "application/json; charset=utf-8"
#: The longest wait a receiver's ``Retry-After`` may ask for.
MAX_RETRY_AFTER = timedelta(hours=1)


def signature(secret: str, body: bytes) -> str:
    """The value of :data:`SIGNATURE_HEADER` for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class PostResult:
    """What one POST came to: the receiver's status, or none when it could not be reached."""

    status: int | None
    #: Short and printable: ``HTTP 503``, ``ConnectError``, ``ReadTimeout``; none when delivered.
    error: str | None = None
    #: The receiver's ``Retry-After`` in seconds, when it gave one.
    retry_after: timedelta | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def receiver_waits(self) -> bool:
        """The receiver is away or asks Pippin to wait (unreachable, 429, 503): the rest of the batch waits too."""
        return self.status is None or self.status in (429, 503)


class WebhookPoster(Protocol):
    """What delivery needs of an HTTP client; tests pass their own."""

    def post(self, body: bytes) -> PostResult: ...

    def close(self) -> None: ...


def _retry_after(value: str | None) -> timedelta | None:
    if value is None or not value.strip().isdigit():
        return None  # an HTTP date is rare from webhook receivers; the backoff applies then
    return min(MAX_RETRY_AFTER, timedelta(seconds=int(value.strip())))


class HTTPWebhookPoster:
    """Posts to one URL over one httpx client (connections reused within a delivery run)."""

    def __init__(
        self, url: str, *, timeout: float, secret: str | None = None, transport: httpx.BaseTransport | None = None
    ) -> None:
        parsed = httpx.URL(url)
        # A password in the URL (MicroMDM's receivers often use Basic auth) goes into the Authorization header, and
        # out of the URL that httpx's own debug logs print.
        auth = httpx.BasicAuth(parsed.username, parsed.password) if parsed.username or parsed.password else None
        self._url = parsed.copy_with(username=None, password=None) if auth is not None else parsed
        self._secret = secret
        self._client = httpx.Client(
            transport=transport, timeout=httpx.Timeout(timeout), follow_redirects=False, auth=auth
        )

    def __repr__(self) -> str:
        return "HTTPWebhookPoster(url=<hidden>)"

    def headers(self, body: bytes) -> Mapping[str, str]:
        headers = {"Content-Type": CONTENT_TYPE, "User-Agent": f"pippin/{__version__} webhook"}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._secret, body)
        return headers

    def post(self, body: bytes) -> PostResult:
        try:
            with self._client.stream("POST", self._url, content=body, headers=self.headers(body)) as response:
                status = response.status_code
                retry_after = _retry_after(response.headers.get("retry-after"))
        except httpx.HTTPError as error:
            # The type names the failure (ConnectError, ReadTimeout); its message may quote the URL.
            return PostResult(status=None, error=type(error).__name__[:64])
        if 200 <= status < 300:
            return PostResult(status=status)
        return PostResult(status=status, error=f"HTTP {status}", retry_after=retry_after)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HTTPWebhookPoster:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
