"""Admin authentication for ``/api/v1``: an ``Authorization: Bearer <token>`` header with an active API token, and
a scope that allows the request (a read-only token reads, and nothing more).

The token itself is never logged or echoed: errors say only which of missing, malformed or invalid it was.
"""

from __future__ import annotations

from pippin.errors import PippinError

_CREATE_HINT = "Create a token with `pippin admin token create NAME` and send `Authorization: Bearer <token>`."


class AuthenticationRequired(PippinError):
    """The request carries no valid admin API token (answered 401 with ``WWW-Authenticate: Bearer``)."""

    code = "unauthorized"

    def __init__(self, message: str, *, hint: str | None = _CREATE_HINT, invalid_token: bool = False) -> None:
        super().__init__(message, hint=hint)
        #: RFC 6750: a token was presented but is not valid (``error="invalid_token"`` in the challenge).
        self.invalid_token = invalid_token


class ReadOnlyToken(PippinError):
    """A read-only API token asked to change something (answered 403; nothing was changed)."""

    code = "read_only_token"

    def __init__(self) -> None:
        super().__init__(
            "This API token is read-only: it may read (GET) but not change anything; nothing was changed.",
            hint="Use a read-write token: `pippin admin token create NAME --scope read-write`.",
        )


def parse_bearer(header: str | None) -> str:
    """The token of an ``Authorization`` header value, or :class:`AuthenticationRequired` saying what is wrong."""
    if header is None or not header.strip():
        raise AuthenticationRequired("This API needs an API token.")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or any(char.isspace() for char in token):
        raise AuthenticationRequired("The Authorization header is not of the form `Bearer <token>`.")
    return token


def invalid_token() -> AuthenticationRequired:
    return AuthenticationRequired(
        "The API token is not valid: it is unknown or was revoked.",
        hint="Check the token you send; `pippin admin token list` shows which tokens are active.",
        invalid_token=True,
    )
