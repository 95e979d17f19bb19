"""The console's front page: tokens with health and days left, device counts by state, last syncs, problems."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from pippin.console.auth import SignedInRoute, Viewer
from pippin.console.rendering import render
from pippin.dep import sync_runs as sync_run_service
from pippin.dep import token as token_service
from pippin.dep.schemas import DEPTokenRead
from pippin.inventory import devices as inventory_service
from pippin.inventory.state import STATE_LABELS
from pippin.server.deps import DBSession, Resources
from pippin.store.models import AssignmentStatus

router = APIRouter(route_class=SignedInRoute)


def _problems(
    tokens: list[DEPTokenRead], assignment_problems: dict[AssignmentStatus, int], cannot_enroll: int
) -> list[tuple[str, str]]:
    """What an admin should act on, each with the page where they act."""
    found: list[tuple[str, str]] = []
    for token in tokens:
        link = f"/console/tokens/{token.name}"
        if token.status == "awaiting_token":
            found.append((f"DEP token {token.name} waits for its server token from Apple.", link + "/connect"))
        elif token.status != "ok":
            found.append((f"DEP token {token.name}: {token.last_error or token.status}", link))
        if token.expiry_level in ("warning", "alarm", "expired"):
            found.append((f"DEP token {token.name} expires in {token.days_left} days: renew it.", link))
        last = token.sync.last_run if token.sync else None
        if last is not None and last.outcome in ("failed", "timed_out"):
            found.append(
                (f"The last sync of {token.name} {last.outcome.replace('_', ' ')}: {last.error_message}", link)
            )
    if cannot_enroll:
        found.append(
            (
                f"{cannot_enroll} device(s) cannot enroll: Apple holds no enrollment profile for them.",
                "/console/devices?cannot_enroll=1",
            )
        )
    for status, count in sorted(assignment_problems.items()):
        found.append(
            (
                f"{count} device(s) could not get their profile at Apple ({status}).",
                f"/console/devices?assignment={status}",
            )
        )
    return found


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, db: DBSession, signed_in: Viewer, resources: Resources) -> Response:
    tokens = sync_run_service.with_sync_health(db, tokens=token_service.list_tokens(db), settings=resources.settings)
    counts = inventory_service.count_by_state(db)
    return render(
        request,
        "overview.html",
        {
            "tokens": tokens,
            "counts": [(state.value, label, counts[state]) for state, label in STATE_LABELS.items()],
            "total": sum(counts.values()),
            "problems": _problems(
                tokens, inventory_service.count_assignment_problems(db), inventory_service.count_cannot_enroll(db)
            ),
        },
    )
