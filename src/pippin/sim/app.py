"""The simulator's one HTTP app: Apple's DEP API at Apple's paths, the Business Manager portal, and the Push
Certificates Portal."""

from __future__ import annotations

from fastapi import FastAPI

from pippin.sim import controls, dep_api, portal, push_pages, push_portal, wire
from pippin.sim.state import SimState


def create_app(state: SimState) -> FastAPI:
    """Build the simulator app around ``state`` (routes read it from ``request.app.state.sim``)."""
    app = FastAPI(title="Pippin's Apple simulator", docs_url="/portal/docs", openapi_url="/portal/openapi.json")
    app.state.sim = state
    app.include_router(dep_api.router)
    app.include_router(controls.router)
    app.include_router(portal.router)
    app.include_router(push_portal.router)
    app.include_router(push_pages.router)
    wire.install_error_pages(app)
    return app
