"""What can go wrong when Pippin speaks to Apple's DEP service, as typed errors an administrator can act on.

Apple answers errors with a short uppercase code in the body (reference section 3, "Common conventions");
``pippin.dep.client`` turns each code into one of these classes. Every error says what happened (message)
and what to do (hint) in an administrator's words, and never carries a credential, a session token or a body.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from pippin.errors import InvalidInput, PippinError, Unavailable
from pippin.store.models.dep_token import TokenStatus


class DEPError(PippinError):
    """Base of every failure talking to Apple's DEP service.

    ``apple_code`` is Apple's code (``INVALID_CURSOR``, ``token_rejected``...) when Apple sent one, ``status``
    the HTTP status of Apple's answer; both are ``None`` when Pippin refused locally or never got an answer.
    """

    code = "dep_error"
    default_message = "Apple's DEP service returned an error."
    default_hint: str | None = "Try again later; if it keeps happening, check Pippin's log for the request."

    def __init__(
        self,
        message: str | None = None,
        *,
        hint: str | None = None,
        apple_code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message or self.default_message, hint=hint or self.default_hint)
        self.apple_code = apple_code
        self.status = status

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(apple_code={self.apple_code!r}, status={self.status!r}, message={self.message!r})"
        )


class DEPAuthFailure(DEPError):
    """Apple refuses this token itself: every call with it fails until an administrator acts.

    ``token_status`` is the :class:`~pippin.store.models.dep_token.TokenStatus` value to record on the token.
    """

    code = "dep_auth_failure"
    token_status: TokenStatus = TokenStatus.token_rejected


class TermsNotSigned(DEPAuthFailure):
    """403 ``T_C_NOT_SIGNED``: Apple published new terms that nobody in the organisation accepted yet (1.4)."""

    code = "dep_terms_not_signed"
    token_status = TokenStatus.terms_not_signed
    default_message = "Apple has published new terms and conditions that your organisation has not accepted yet."
    default_hint = (
        "An administrator of your Apple Business Manager organisation must sign in at business.apple.com and "
        "accept them; syncing resumes on its own afterwards."
    )


class AccessDenied(DEPAuthFailure):
    """403 ``ACCESS_DENIED``: the token's MDM server has no access any more, e.g. it was deleted (2.2)."""

    code = "dep_access_denied"
    token_status = TokenStatus.access_denied
    default_message = "Apple denied this DEP token access to its MDM server."
    default_hint = (
        "In Apple Business Manager, check that the MDM server still exists and that the token's account still "
        "has the right role; then download a new token for it and upload it to Pippin."
    )


class TokenRejected(DEPAuthFailure):
    """401 on ``/session``: the token was revoked, replaced by a newer download, or never valid (1.4, 2.1)."""

    code = "dep_token_rejected"
    token_status = TokenStatus.token_rejected
    default_message = "Apple rejected this DEP token."
    default_hint = (
        "Someone may have downloaded a newer token for this MDM server in Apple Business Manager, which revokes "
        "this one: download the token again (Preferences, Your MDM Servers, Download Token) and upload it to "
        "Pippin. If the server clock is wrong, fix its time synchronisation first."
    )


class TokenExpired(DEPAuthFailure):
    """The token's year is over (``access_token_expiry`` passed, or Apple said ``token_expired``) (1.4)."""

    code = "dep_token_expired"
    token_status = TokenStatus.expired
    default_message = "This DEP token has expired."
    default_hint = (
        "Tokens last one year and cannot be renewed through the API: in Apple Business Manager download a new "
        "token for this MDM server (Preferences, Your MDM Servers, Download Token) and upload it to Pippin."
    )

    @classmethod
    def at(cls, expires_at: datetime) -> TokenExpired:
        """The error for a token whose expiry, known locally, has passed; nothing was sent to Apple."""
        stamp = expires_at.strftime("%Y-%m-%d %H:%M UTC")
        return cls(f"This DEP token expired on {stamp}; Pippin did not contact Apple with it.")


class CursorError(DEPError):
    """Apple refused the sync cursor (reference section 6); the sync engine decides how to start over."""

    code = "dep_cursor_error"


class CursorExhausted(CursorError):
    """400 ``EXHAUSTED_CURSOR``: this fetch cursor already returned every device; continue with sync."""

    code = "dep_cursor_exhausted"
    default_message = "Apple says the full device list was already read with this cursor."
    default_hint = "Continue with a change sync from the same cursor."


class CursorExpired(CursorError):
    """400 ``EXPIRED_CURSOR``: the cursor is older than seven days."""

    code = "dep_cursor_expired"
    default_message = "Apple says the sync cursor is older than seven days and has expired."
    default_hint = "Run a full sync to read every device again; sync at least weekly to avoid this."


class CursorInvalid(CursorError):
    """400 ``INVALID_CURSOR``: Apple does not know the cursor (garbled, or another MDM server's)."""

    code = "dep_cursor_invalid"
    default_message = "Apple does not recognise the sync cursor."
    default_hint = "Run a full sync to read every device again."


class CursorRequired(CursorError):
    """400 ``CURSOR_REQUIRED``: a change sync was asked for without a cursor."""

    code = "dep_cursor_required"
    default_message = "A change sync needs a cursor from an earlier full sync."
    default_hint = "Run a full sync first."


class DEPUnavailable(DEPError, Unavailable):
    """Apple could not be reached, timed out, or kept answering 429/5xx after every retry.

    ``retry_after`` is how many seconds Apple asked to wait, when it said so.
    """

    code = "dep_unavailable"
    default_message = "Apple's DEP service could not be reached."
    default_hint = "Check this server's network access to Apple, then try again in a few minutes."

    def __init__(
        self,
        message: str | None = None,
        *,
        hint: str | None = None,
        apple_code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, hint=hint, apple_code=apple_code, status=status)
        self.retry_after = retry_after


class DEPRequestRejected(DEPError, InvalidInput):
    """Apple (or Pippin, before sending) refused the request itself: any other 4xx code (reference 3.x)."""

    code = "dep_request_rejected"
    default_message = "Apple rejected the request."
    default_hint = "Check the values sent (profile fields, serial numbers) and try again."


class DEPResponseInvalid(DEPError):
    """Apple answered 200 but the body was not the shape the reference describes; nothing was applied."""

    code = "dep_response_invalid"
    default_message = "Apple's answer was not in the expected format."
    default_hint = "Try again later; if it keeps happening, report it with Pippin's log of the request."


# --- Reading Apple's error bodies -------------------------------------------------------------------------------

# Apple sends a bare code (``INVALID_CURSOR``), depsim a JSON-quoted one (``"INVALID_CURSOR"``), test doubles of
# other projects ``{"code": "T_C_NOT_SIGNED"}``, and /session failures OAuth problem words such as
# ``oauth_problem=token_rejected`` (reference sections 2.1, 3, 9). Codes are matched by substring.
_MAX_CODE_CHARS = 64
_CODE_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.]{1,63}")
_OAUTH_PROBLEM = re.compile(r"oauth_problem=([A-Za-z_]{1,64})")
_CURSOR_ERRORS: dict[str, type[CursorError]] = {
    "EXHAUSTED_CURSOR": CursorExhausted,
    "EXPIRED_CURSOR": CursorExpired,
    "INVALID_CURSOR": CursorInvalid,
    "CURSOR_REQUIRED": CursorRequired,
}
# OAuth problem words meaning the token itself is dead; anything else on /session is also a rejection, but
# clock and nonce problems get a hint about time synchronisation instead.
_EXPIRED_WORDS = ("token_expired",)
_CLOCK_WORDS = ("timestamp_refused", "nonce_used")


def read_apple_code(body: bytes) -> str | None:
    """Apple's error code in ``body``, unwrapped from quotes or JSON; ``None`` when there is none.

    Only a short code-like word is returned, never free text, so an error built from it cannot leak a body.
    """
    text = body[:4096].decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        decoded: object = json.loads(text)
    except ValueError:
        decoded = text
    if isinstance(decoded, dict):
        decoded = decoded.get("code") or decoded.get("error") or decoded.get("oauth_problem") or ""
    if not isinstance(decoded, str):
        return None
    text = decoded.strip().strip("\"'").strip()
    problem = _OAUTH_PROBLEM.search(text)
    if problem:
        return problem.group(1)
    match = _CODE_PATTERN.search(text)
    return match.group(0)[:_MAX_CODE_CHARS] if match else None


def _contains(apple_code: str | None, word: str) -> bool:
    return apple_code is not None and word.upper() in apple_code.upper()


def is_session_invalid(status: int, apple_code: str | None) -> bool:
    """Whether an API answer means only the session is stale: 401, or 403 ``FORBIDDEN`` (reference 2.2).

    Those are worth exactly one re-authentication; 403 ``ACCESS_DENIED``/``T_C_NOT_SIGNED`` are not.
    """
    if status == 401:
        return not any(_contains(apple_code, word) for word in (*_EXPIRED_WORDS, "token_rejected"))
    return status == 403 and _contains(apple_code, "FORBIDDEN")


def error_for(status: int, apple_code: str | None, *, on_session: bool) -> DEPError:
    """The typed error for Apple's 4xx answer ``status``/``apple_code`` (reference sections 2, 3, 6).

    ``on_session`` says the answer came from ``GET /session``, where a 401 means the token, not a session, failed.
    """
    if _contains(apple_code, "T_C_NOT_SIGNED"):
        return TermsNotSigned(apple_code=apple_code, status=status)
    if _contains(apple_code, "ACCESS_DENIED"):
        return AccessDenied(apple_code=apple_code, status=status)
    if status == 401 and any(_contains(apple_code, word) for word in _EXPIRED_WORDS):
        return TokenExpired("Apple says this DEP token has expired.", apple_code=apple_code, status=status)
    if status == 401 and on_session and any(_contains(apple_code, word) for word in _CLOCK_WORDS):
        return TokenRejected(
            "Apple refused the sign-in because this server's clock is off or a request was replayed.",
            hint="Fix this server's time synchronisation (NTP), then try again.",
            apple_code=apple_code,
            status=status,
        )
    if status == 401 or (on_session and status == 403):
        return TokenRejected(apple_code=apple_code, status=status)
    for word, cursor_error in _CURSOR_ERRORS.items():
        if _contains(apple_code, word):
            return cursor_error(apple_code=apple_code, status=status)
    shown = f" ({apple_code})" if apple_code else ""
    return DEPRequestRejected(
        f"Apple rejected the request with HTTP {status}{shown}.", apple_code=apple_code, status=status
    )
