"""What only the API's routes ask for: the authenticated admin behind an ``Authorization: Bearer`` token, checked
before anything reads the request's body.

FastAPI reads and parses a route's body before it resolves any dependency, so an authentication dependency
alone would let a client with no token learn how Pippin parses bodies (a 422 for broken JSON, a 400 for broken
multipart) and make it read them. Every ``/api/v1`` router is therefore built with :class:`AdminRoute`, which
authenticates first, in a short transaction of its own, and answers 401 before the body is touched; the
:data:`AdminAuth` dependency then hands routes the admin it found. The shared dependencies (database session,
resources, settings, secret box) live in ``pippin.server.deps``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from pippin.admin import api_tokens as api_token_service
from pippin.api.auth import AuthenticationRequired, ReadOnlyToken, invalid_token, parse_bearer
from pippin.api.json_body import StrictJSONRoute
from pippin.server.deps import server_resources
from pippin.store.db import read_transaction
from pippin.store.models import APITokenScope

#: The methods that only read (RFC 9110's safe methods); every other method may change something.
READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Declared for the OpenAPI description (the "Authorize" button); the header is parsed by parse_bearer.
_bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="APIToken",
    description="An admin API token from `pippin admin token create NAME`.",
)


@dataclass(frozen=True)
class APIAdmin:
    """The API token behind a request, as plain values: it was read in a transaction that has ended."""

    token_name: str


def _authenticate(request: Request) -> APIAdmin:
    """The admin whose active token the request carries, or :class:`AuthenticationRequired`; records its use.

    This is also the one place that enforces a token's scope, for every route under ``/api/v1``: a read-only
    token's request with a method that may write is refused (403) before its body is read or its route runs, so
    no route can forget.
    """
    bearer = parse_bearer(request.headers.get("authorization"))
    with read_transaction(server_resources(request).session_factory) as session:
        token = api_token_service.authenticate_api_token(session, bearer=bearer)
        if token is None:
            raise invalid_token()
        if request.method not in READING_METHODS and token.scope != APITokenScope.read_write:
            raise ReadOnlyToken()
        return APIAdmin(token_name=token.name)


class AdminRoute(StrictJSONRoute):
    """A route of ``/api/v1``: the API token is checked before the body is read (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def authenticate_then_handle(request: Request) -> Response:
            request.state.api_admin = await run_in_threadpool(_authenticate, request)
            return await handle(request)

        return authenticate_then_handle


def require_admin(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
) -> APIAdmin:
    """The admin :class:`AdminRoute` authenticated for this request."""
    admin = getattr(request.state, "api_admin", None)
    if not isinstance(admin, APIAdmin):
        # A route of /api/v1 built without AdminRoute: refused, never let in unauthenticated.
        raise AuthenticationRequired("This API needs an API token.")
    return admin


AdminAuth = Annotated[APIAdmin, Depends(require_admin)]
