"""CSRF protection for every console form.

Signed in, a form carries the session's CSRF token (derived from the session secret, see
``admin.sessions.csrf_token_for``). The sign-in form, before there is a session, uses a double-submit
cookie: a random value in an HttpOnly SameSite cookie that the form must repeat. Either way another site
cannot produce the value, so a forged post is refused before anything reads its fields.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from pippin.errors import PippinError

FIELD = "csrf_token"
SIGN_IN_COOKIE = "pippin_sign_in"
_MAX_TOKEN_CHARS = 128


class CSRFRejected(PippinError):
    """A form arrived without this session's CSRF token (answered 403; nothing is changed)."""

    code = "csrf_rejected"

    def __init__(self) -> None:
        super().__init__(
            "This form was not sent from this console page, or the page is too old, so nothing was changed.",
            hint="Reload the page and send the form again.",
        )


def check(expected: str | None, sent: object) -> None:
    """Raise :class:`CSRFRejected` unless ``sent`` is exactly ``expected`` (compared in constant time)."""
    if (
        not expected
        or not isinstance(sent, str)
        or len(sent) > _MAX_TOKEN_CHARS
        or not hmac.compare_digest(expected.encode(), sent.encode())
    ):
        raise CSRFRejected()


def sign_in_token(request: Request) -> str:
    """The double-submit value of this browser's sign-in form: the cookie's, or a new one to set."""
    current = request.cookies.get(SIGN_IN_COOKIE)
    if current and 20 <= len(current) <= _MAX_TOKEN_CHARS:
        return current
    return secrets.token_urlsafe(32)


def set_sign_in_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        max_age=3600,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
