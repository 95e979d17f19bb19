"""The console's front page: tokens with health and days left, device counts by state, last syncs, problems."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from pippin.api.deps import DBSession
from pippin.console.auth import Viewer
from pippin.console.rendering import render

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, db: DBSession, signed_in: Viewer) -> Response:
    return render(request, "overview.html", {})
