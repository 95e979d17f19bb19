"""What only the API's routes ask for: the authenticated admin behind an ``Authorization: Bearer`` token.

The shared dependencies (database session, resources, settings, secret box) live in ``pippin.server.deps``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pippin.admin import api_tokens as api_token_service
from pippin.api.auth import invalid_token, parse_bearer
from pippin.server.deps import DBSession
from pippin.store.models import AdminAPIToken

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
    """The API token that authenticates this request, or a 401 (missing, malformed, unknown, revoked)."""
    bearer = parse_bearer(request.headers.get("authorization"))
    token = api_token_service.authenticate_api_token(session, bearer=bearer)
    if token is None:
        raise invalid_token()
    return token


AdminAuth = Annotated[AdminAPIToken, Depends(require_admin)]
