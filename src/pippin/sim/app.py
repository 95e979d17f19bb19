"""The simulator's one HTTP app: Apple's DEP API at Apple's paths, the Business Manager portal, the Push
Certificates Portal, APNs' device side, and the factory (device facts and identities)."""

from __future__ import annotations

from fastapi import FastAPI

from pippin.sim import apns_devices, controls, dep_api, factory, portal, push_pages, push_portal, wire
from pippin.sim.apns_delivery import APNsDelivery
from pippin.sim.state import SimState


def create_app(state: SimState, *, apns: APNsDelivery | None = None) -> FastAPI:
    """Build the simulator app around ``state`` (routes read it from ``request.app.state.sim``).

    ``apns`` is the push-token registry the simulated APNs server (:mod:`pippin.sim.apns_server`) delivers
    through; pass the same one to both. Without it the app has a registry of its own.
    """
    app = FastAPI(title="Pippin's Apple simulator", docs_url="/portal/docs", openapi_url="/portal/openapi.json")
    app.state.sim = state
    app.state.apns = apns if apns is not None else APNsDelivery(state)
    app.include_router(dep_api.router)
    app.include_router(controls.router)
    app.include_router(portal.router)
    app.include_router(push_portal.router)
    app.include_router(push_pages.router)
    app.include_router(apns_devices.router)
    app.include_router(factory.router)
    wire.install_error_pages(app)
    return app
