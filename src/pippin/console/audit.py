"""The audit log page: who changed what, when and from where, newest first, paged by id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from pippin.admin import audit as audit_service
from pippin.console.auth import SignedInRoute, Viewer
from pippin.console.rendering import render
from pippin.server.deps import DBSession
from pippin.server.integers import MAX_DB_INTEGER, WHOLE_NUMBER

router = APIRouter(route_class=SignedInRoute)
PAGE_SIZE = 100


@router.get("/audit", response_class=HTMLResponse)
def audit_log(
    request: Request,
    db: DBSession,
    signed_in: Viewer,
    # Event ids are Integer columns: bounded by what one holds, so a huge number is a 400, not a driver error.
    before: Annotated[int | None, Query(ge=1, le=MAX_DB_INTEGER), WHOLE_NUMBER] = None,
    actor: Annotated[str | None, Query(max_length=320)] = None,
) -> Response:
    events = audit_service.list_events(db, limit=PAGE_SIZE + 1, before_id=before, actor=actor or None)
    more = len(events) > PAGE_SIZE
    events = events[:PAGE_SIZE]
    return render(
        request,
        "audit.html",
        {"events": events, "next_before": events[-1].id if more and events else None, "actor": actor or ""},
    )
