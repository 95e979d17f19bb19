"""Pippin's client of Apple's DEP web service: one method per endpoint, sessions and retries inside.

The base URL is Apple's (``https://mdmenrollment.apple.com``) or ``pippin sim``'s. One Apple session is reused
until Apple refuses it, then renewed once under a lock (reference 2.2); 429, 5xx and broken connections are
retried with capped, jittered exponential backoff that honours ``Retry-After`` (reference 8). Apple's codes
come out as the typed errors of :mod:`pippin.dep.errors`; after a token-level failure (terms not signed, access
denied, token rejected or expired) the client sends nothing more. Logs carry method, path, status and duration,
never a header value, body, credential or session token.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, NoReturn, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from pippin import __version__
from pippin.dep.errors import (
    CursorRequired,
    DEPAuthFailure,
    DEPError,
    DEPRequestRejected,
    DEPResponseInvalid,
    DEPUnavailable,
    TokenExpired,
    error_for,
    is_session_invalid,
    read_apple_code,
)
from pippin.dep.oauth import OAuthCredentials, session_authorization
from pippin.dep.wire import (
    Account,
    ActivationLockRequest,
    ActivationLockResult,
    AssignProfileRequest,
    AssignProfileResult,
    DefineProfileResult,
    DeviceDetail,
    DevicePage,
    DeviceStatusResponse,
    PageRequest,
    Profile,
    ReplacementDetails,
    SerialsRequest,
    SessionResponse,
    check_cursor,
    check_page_limit,
    check_serials,
    normalize_profile_uuid,
    parse_device_details,
)

__all__ = ["DEPClient", "OAuthCredentials"]

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = "10"  # reference 2.3: version 10 adds retry_after_seconds, eid, MAC addresses, replacements
SESSION_HEADER = "X-ADM-Auth-Session"
MAX_BODY_BYTES = 16 * 1024 * 1024  # a full page of 1000 devices is about 1 MB
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
MAX_RETRY_AFTER = 300.0  # waits Apple asks for beyond this are reported, not slept through

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    payload: Any  # the parsed JSON of a 200, else None


class _Transient(Exception):
    """One attempt failed in a way worth retrying; carries what to report if every retry fails."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date (RFC 9110 10.2.3); junk is ignored."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class DEPClient:
    """Talks to one DEP token's MDM server at Apple. Use as a context manager, or call :meth:`close`.

    Thread-safe: calls may run in parallel; re-authentication is serialised by one lock. ``sleep`` and ``now``
    are injectable so tests run instantly and can check every wait.
    """

    def __init__(
        self,
        *,
        base_url: str,
        credentials: OAuthCredentials,
        timeout: float = 30.0,
        max_retries: int = 5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise DEPRequestRejected(
                "The DEP base URL must start with https:// (or http:// for the simulator).",
                hint="Set PIPPIN_DEP_BASE_URL to https://mdmenrollment.apple.com or the simulator's address.",
            )
        if max_retries < 0 or timeout <= 0:
            raise DEPRequestRejected("max_retries must be 0 or more and timeout positive.")
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._max_retries = max_retries
        self._sleep = sleep
        self._now = now
        self._random = random.Random()
        self._http = httpx.Client(transport=transport, timeout=httpx.Timeout(timeout), follow_redirects=False)
        self._lock = threading.Lock()
        self._session_token: str | None = None
        self._failure: DEPAuthFailure | None = None

    def __repr__(self) -> str:
        return f"DEPClient(base_url={self._base_url!r}, credentials={self._credentials!r})"

    __str__ = __repr__

    def __enter__(self) -> DEPClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        self._http.close()

    # --- Endpoints (reference section 3) ---------------------------------------------------------------------

    def account(self) -> Account:
        """``GET /account``: the MDM server and organisation behind this token (3.1)."""
        return self._parse(Account, self._call("GET", "/account"), "/account")

    def fetch_devices(self, *, cursor: str | None = None, limit: int | None = None) -> DevicePage:
        """One page of ``POST /server/devices``, the full list (3.2). No cursor on the first page."""
        if cursor is not None:
            check_cursor(cursor)
        body = PageRequest(cursor=cursor or None, limit=check_page_limit(limit)).model_dump(exclude_none=True)
        return self._parse(DevicePage, self._call("POST", "/server/devices", body=body), "/server/devices")

    def sync_devices(self, *, cursor: str, limit: int | None = None) -> DevicePage:
        """One page of ``POST /devices/sync``, the changes since ``cursor`` (3.3)."""
        if not cursor:
            raise CursorRequired()
        check_cursor(cursor)
        body = PageRequest(cursor=cursor, limit=check_page_limit(limit)).model_dump(exclude_none=True)
        return self._parse(DevicePage, self._call("POST", "/devices/sync", body=body), "/devices/sync")

    def device_details(self, serials: Sequence[str]) -> dict[str, DeviceDetail]:
        """``POST /devices``: each serial's current record, or why there is none (3.4)."""
        body = SerialsRequest(devices=check_serials(serials)).model_dump(exclude_none=True)
        payload = self._call("POST", "/devices", body=body)
        try:
            return parse_device_details(payload)
        except (ValueError, ValidationError):
            raise _invalid("/devices") from None

    def define_profile(self, profile: Profile) -> DefineProfileResult:
        """``POST /profile``: a new, immutable profile, optionally assigned to ``profile.devices`` (3.5)."""
        if profile.devices:
            check_serials(profile.devices)
        payload = self._call("POST", "/profile", body=profile.to_wire())
        return self._parse(DefineProfileResult, payload, "/profile")

    def get_profile(self, profile_uuid: str) -> Profile:
        """``GET /profile``: a profile defined earlier (3.6); an unknown UUID is a DEPRequestRejected."""
        params = {"profile_uuid": normalize_profile_uuid(profile_uuid)}
        return self._parse(Profile, self._call("GET", "/profile", params=params), "/profile")

    def assign_profile(self, *, profile_uuid: str, serials: Sequence[str]) -> AssignProfileResult:
        """``POST /profile/devices``: per-serial outcome, THROTTLED ones with ``retry_after_seconds`` (3.7)."""
        request = AssignProfileRequest(
            profile_uuid=normalize_profile_uuid(profile_uuid), devices=check_serials(serials)
        )
        payload = self._call("POST", "/profile/devices", body=request.model_dump())
        return self._parse(AssignProfileResult, payload, "/profile/devices")

    def remove_profile(self, serials: Sequence[str]) -> dict[str, str]:
        """``DELETE /profile/devices`` with a JSON body: per-serial outcome (3.8)."""
        body = SerialsRequest(devices=check_serials(serials)).model_dump(exclude_none=True)
        payload = self._call("DELETE", "/profile/devices", body=body)
        return self._parse(DeviceStatusResponse, payload, "/profile/devices").devices

    def disown_devices(self, serials: Sequence[str]) -> dict[str, str]:
        """``POST /devices/disown``: releases the serials from the organisation for good (3.9)."""
        body = SerialsRequest(devices=check_serials(serials)).model_dump(exclude_none=True)
        payload = self._call("POST", "/devices/disown", body=body)
        return self._parse(DeviceStatusResponse, payload, "/devices/disown").devices

    def activation_lock(
        self, serial: str, *, escrow_key: str | None = None, lost_message: str | None = None
    ) -> ActivationLockResult:
        """``POST /device/activationlock`` (3.10); ``escrow_key`` is the hex PBKDF2 of the bypass code."""
        (device,) = check_serials([serial])
        request = ActivationLockRequest(device=device, escrow_key=escrow_key, lost_message=lost_message)
        payload = self._call("POST", "/device/activationlock", body=request.model_dump(exclude_none=True))
        return self._parse(ActivationLockResult, payload, "/device/activationlock")

    def replacement_details(self, serial: str) -> ReplacementDetails:
        """``GET /device/replacementDetails`` (3.11, protocol 10): which device ``serial`` replaced."""
        (device,) = check_serials([serial])
        payload = self._call("GET", "/device/replacementDetails", params={"device": device})
        return self._parse(ReplacementDetails, payload, "/device/replacementDetails")

    # --- Sessions (reference section 2) ----------------------------------------------------------------------

    def _call(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> Any:
        """Send one API call with the session, renewing it once if Apple says it went stale (reference 2.2)."""
        session = self._session()
        answer = self._exchange(method, path, body=body, params=params, session=session)
        if answer.status != 200 and is_session_invalid(answer.status, read_apple_code(answer.body)):
            self._drop_session(session)
            session = self._session()
            answer = self._exchange(method, path, body=body, params=params, session=session)
            if answer.status != 200 and is_session_invalid(answer.status, read_apple_code(answer.body)):
                # Never a loop (zentral's unbounded recursion, reference 2.2): report and let a later run retry.
                raise DEPUnavailable(
                    "Apple refused a session it had just issued.",
                    hint="This is usually brief on Apple's side; the next sync will try again.",
                    apple_code=read_apple_code(answer.body),
                    status=answer.status,
                )
        if answer.status == 200:
            return answer.payload
        raise self._record(error_for(answer.status, read_apple_code(answer.body), on_session=False))

    def _session(self) -> str:
        """The current session token, getting one from ``GET /session`` first if there is none."""
        self._refuse_if_failed()
        with self._lock:
            self._refuse_if_failed()
            if self._session_token is None:
                self._session_token = self._new_session()
            return self._session_token

    def _new_session(self) -> str:
        url = f"{self._base_url}/session"
        authorization = session_authorization(self._credentials, url)
        answer = self._exchange("GET", "/session", authorization=authorization)
        if answer.status != 200:
            error = error_for(answer.status, read_apple_code(answer.body), on_session=True)
            if isinstance(error, DEPAuthFailure):
                self._failure = error
            raise error
        try:
            return SessionResponse.model_validate(answer.payload).auth_session_token
        except ValidationError:
            raise _invalid("/session") from None

    def _drop_session(self, stale: str) -> None:
        with self._lock:
            if self._session_token == stale:
                self._session_token = None

    def _rotate_session(self, sent: str, received: str) -> None:
        """Apple may hand out a new session token on any answer; it replaces the one we sent (reference 2.2)."""
        with self._lock:
            if self._session_token == sent:
                self._session_token = received

    def _refuse_if_failed(self) -> None:
        expires_at = self._credentials.expires_at
        if self._failure is None and expires_at is not None and self._now() >= expires_at:
            self._failure = TokenExpired.at(expires_at)
        if self._failure is not None:
            failure = self._failure
            raise type(failure)(
                failure.message, hint=failure.hint, apple_code=failure.apple_code, status=failure.status
            )

    def _record(self, error: DEPError) -> DEPError:
        if isinstance(error, DEPAuthFailure):
            with self._lock:
                self._failure = error
        return error

    # --- Transport and retries (reference section 8) ---------------------------------------------------------

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        session: str | None = None,
        authorization: str | None = None,
    ) -> _Answer:
        """Send until Apple gives a final answer, retrying 429, 5xx and broken connections with backoff.

        Repeating is safe for every DEP call: reads change nothing; assigning, removing and disowning the same
        serials again ends in the same state; a repeated define only leaves an unused immutable profile
        (reference 3.5-3.9). So even a request that may have reached Apple is retried.
        """
        headers = {
            "User-Agent": f"pippin/{__version__}",
            "X-Server-Protocol-Version": PROTOCOL_VERSION,
            "Content-Type": "application/json;charset=UTF8",
            "Accept": "application/json",
        }
        if session is not None:
            headers[SESSION_HEADER] = session
        if authorization is not None:
            headers["Authorization"] = authorization
        content = json.dumps(body).encode() if body is not None else None
        url = f"{self._base_url}{path}"
        attempt = 0
        while True:
            try:
                return self._attempt(method, url, path, headers, content, params, session, attempt)
            except _Transient as failure:
                wait = self._backoff(attempt, failure)
                attempt += 1
                self._sleep(wait)

    def _backoff(self, attempt: int, failure: _Transient) -> float:
        """How long to wait before the next attempt, or the DEPUnavailable to raise instead."""
        if failure.retry_after is not None and failure.retry_after > MAX_RETRY_AFTER:
            until = self._now().timestamp() + failure.retry_after
            when = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M UTC")
            raise DEPUnavailable(
                f"Apple asked Pippin to wait {round(failure.retry_after / 60)} minutes before calling again.",
                hint=f"Try again after {when}.",
                status=failure.status,
                retry_after=failure.retry_after,
            )
        if attempt >= self._max_retries:
            raise DEPUnavailable(
                f"Apple's DEP service did not answer properly after {attempt + 1} attempts: {failure.reason}.",
                hint="Check this server's network access to Apple (or the simulator), then try again in a few "
                "minutes; the sync resumes from where it stopped.",
                status=failure.status,
                retry_after=failure.retry_after,
            )
        if failure.retry_after is not None:
            return failure.retry_after
        # Full jitter (random between 0 and the capped exponential step) spreads out many clients' retries.
        return self._random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))

    def _attempt(
        self,
        method: str,
        url: str,
        path: str,
        headers: dict[str, str],
        content: bytes | None,
        params: dict[str, str] | None,
        session: str | None,
        attempt: int,
    ) -> _Answer:
        started = time.monotonic()
        status: int | None = None
        try:
            with self._http.stream(method, url, headers=headers, content=content, params=params) as response:
                status = response.status_code
                received = response.headers.get(SESSION_HEADER)
                body = _read_limited(response, path)
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"), self._now())
        except httpx.TransportError as exc:
            self._log(method, path, status, started, attempt, error=type(exc).__name__)
            raise _Transient(f"{type(exc).__name__} talking to {path}") from None
        self._log(method, path, status, started, attempt)
        if session is not None and received and received != session:
            self._rotate_session(session, received)
        if status == 429 or status >= 500:
            self._transient(status, body, retry_after)
        if status != 200:
            return _Answer(status, body, None)
        try:
            return _Answer(status, body, json.loads(body))
        except ValueError:
            raise _Transient(f"an unreadable answer from {path}", status=status) from None

    @staticmethod
    def _transient(status: int, body: bytes, retry_after: float | None) -> NoReturn:
        code = read_apple_code(body)
        shown = f" {code}" if code else ""
        raise _Transient(f"HTTP {status}{shown}", status=status, retry_after=retry_after)

    @staticmethod
    def _log(method: str, path: str, status: int | None, started: float, attempt: int, error: str = "") -> None:
        fields: dict[str, object] = {"method": method, "path": path, "status": status, "attempt": attempt + 1}
        fields["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        if error:
            fields["error"] = error
        logger.debug("dep request", extra={"fields": fields})

    @staticmethod
    def _parse(model: type[ModelT], payload: Any, path: str) -> ModelT:
        try:
            return model.model_validate(payload)
        except ValidationError:
            raise _invalid(path) from None


def _read_limited(response: httpx.Response, path: str) -> bytes:
    """The body, refusing one larger than any real DEP answer before it fills memory."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise DEPResponseInvalid(f"Apple's answer to {path} was larger than {MAX_BODY_BYTES // 2**20} MB.")
        chunks.append(chunk)
    return b"".join(chunks)


def _invalid(path: str) -> DEPResponseInvalid:
    return DEPResponseInvalid(f"Apple's answer to {path} was not in the expected format.")
