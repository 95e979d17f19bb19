"""``GET /healthz``: whether this process can serve, for load balancers and orchestrators (no auth)."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy import text

from pippin import __version__
from pippin.server.deps import Resources

logger = logging.getLogger("pippin.api")

router = APIRouter(tags=["health"])


class HealthRead(BaseModel):
    status: Literal["ok", "unavailable"]
    version: str
    database: Literal["ok", "unreachable"]
    reason: str | None = None


@router.get(
    "/healthz",
    response_model=HealthRead,
    response_model_exclude_none=True,
    responses={503: {"model": HealthRead, "description": "The database does not answer."}},
)
def healthz(resources: Resources, response: Response) -> HealthRead:
    """200 when the database answers ``SELECT 1``; 503 with the reason when it does not."""
    try:
        with resources.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        # The driver's message may name hosts and users; it goes to the log, the client gets the kind.
        logger.warning("health check: database unreachable: %s", type(exc).__name__, exc_info=True)
        response.status_code = 503
        return HealthRead(
            status="unavailable",
            version=__version__,
            database="unreachable",
            reason=f"The database did not answer SELECT 1 ({type(exc).__name__}); the server log has the details.",
        )
    return HealthRead(status="ok", version=__version__, database="ok")
