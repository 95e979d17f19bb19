"""The device endpoints as a sub-app of their own, mounted at ``/mdm`` by ``pippin.server.app.create_server``.

It has no routes yet (enrollment, SCEP, check-in and commands arrive with the device half), but its error
contract is the one they will answer with (``device/errors.py``): plain-text bodies, never 401, and a body
limit of its own, sized for command reports rather than for admin forms.
"""

from __future__ import annotations

from fastapi import FastAPI

from pippin.device import enroll_links
from pippin.device.errors import install_error_handlers, refuse_plain
from pippin.server.middleware import BodySizeLimit
from pippin.server.resources import ServerResources

#: Command reports carry whole inventories (installed apps, profiles, certificates): a few MiB on a full
#: device. Larger than any admin form, still small enough that a hostile body is refused before it is read.
MAX_REQUEST_BYTES = 8 * 1024 * 1024


def create_device_app(resources: ServerResources) -> FastAPI:
    """The device endpoints over ``resources``; mount them at ``/mdm``."""
    device = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    device.state.resources = resources
    # Added first so it sits inside the unexpected-error guard that install_error_handlers adds.
    device.add_middleware(BodySizeLimit, max_bytes=MAX_REQUEST_BYTES, refuse=refuse_plain)
    install_error_handlers(device)
    device.include_router(enroll_links.router)
    return device
