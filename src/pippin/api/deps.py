"""What only the API's routes ask for: the authenticated admin behind an ``Authorization: Bearer`` token.

The shared dependencies (database session, resources, settings, secret box) live in ``pippin.server.deps``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pippin.admin import api_tokens as api_token_service
from pippin.api.auth import ReadOnlyToken, invalid_token, parse_bearer
from pippin.server.deps import DBSession
from pippin.store.models import AdminAPIToken, APITokenScope

#: The methods that only read (RFC 9110's safe methods); every other method may change something.
READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Declared for the OpenAPI description (the "Authorize" button); the header is parsed by parse_bearer.
_bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="APIToken",
    description="An admin API token from `pippin admin token create NAME`.",
)


def require_admin(
    request: Request,
    session: DBSession,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
) -> AdminAPIToken:
    """The API token that authenticates this request, or a 401 (missing, malformed, unknown, revoked).

    This is also the one place that enforces a token's scope, for every route under ``/api/v1``: a read-only
    token's request with a method that may write is refused (403) before its route runs, so no route can forget.
    """
    bearer = parse_bearer(request.headers.get("authorization"))
    token = api_token_service.authenticate_api_token(session, bearer=bearer)
    if token is None:
        raise invalid_token()
    if request.method not in READING_METHODS and token.scope != APITokenScope.read_write:
        raise ReadOnlyToken()
    return token


AdminAuth = Annotated[AdminAPIToken, Depends(require_admin)]
