"""Who changes things through the REST API, for the audit log: the API token's name and the client's address.

Every mutating ``/api/v1`` route takes :data:`APIChanger` and calls :meth:`APIActor.record` after the service
call, inside the request's transaction: a change that fails or rolls back leaves no event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from pippin.admin import audit as audit_service
from pippin.api.deps import AdminAuth
from pippin.server.proxies import client_address


@dataclass(frozen=True)
class APIActor:
    """The API token behind a request and where the request came from."""

    token_name: str
    source: str | None

    def record(
        self, session: Session, *, action: str, target: str | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        """Record a change this token made, in the transaction that makes it."""
        audit_service.record_event(
            session,
            actor=self.token_name,
            interface=audit_service.Interface.api,
            action=action,
            target=target,
            source=self.source,
            detail=detail,
        )


def _api_actor(request: Request, token: AdminAuth) -> APIActor:
    # The token dependency is the one the /api/v1 router already resolved (FastAPI caches it per request).
    return APIActor(token_name=token.name, source=client_address(request))


APIChanger = Annotated[APIActor, Depends(_api_actor)]
