"""The device endpoints as a sub-app of their own, mounted at ``/mdm`` by ``pippin.server.app.create_server``.

Its routes come one module each (``device/enroll.py`` for ADE enrollment, ``device/enroll_links.py`` for manual
enrollment links, ``device/scep.py`` for SCEP,
``device/checkin.py`` for check-in and the ServerURL), all under one error contract (``device/errors.py``):
plain-text bodies, never 401, and a body limit of its own, sized for command reports rather than for admin
forms (a route may read less: MachineInfo stops at 64 KiB). Check-in authenticates devices against the
identities the SCEP CA issued (``mdm/identities.py``), with the parsed certificates kept in one cache per app.
"""

from __future__ import annotations

from fastapi import FastAPI

from pippin.device import checkin, enroll, enroll_links, scep
from pippin.device.errors import install_error_handlers, refuse_plain
from pippin.mdm.device_auth import CertificateCache
from pippin.mdm.identities import IdentityStore, PKIIdentityStore
from pippin.server.middleware import BodySizeLimit
from pippin.server.resources import ServerResources

#: Command reports carry whole inventories (installed apps, profiles, certificates): a few MiB on a full
#: device. Larger than any admin form, still small enough that a hostile body is refused before it is read.
MAX_REQUEST_BYTES = 8 * 1024 * 1024


def create_device_app(resources: ServerResources, *, identities: IdentityStore | None = None) -> FastAPI:
    """The device endpoints over ``resources``; mount them at ``/mdm``. ``identities`` defaults to the SCEP CA's
    records (``PKIIdentityStore``)."""
    device = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    device.state.resources = resources
    device.state.device_identities = identities or PKIIdentityStore(resources.secret_box)
    device.state.certificate_cache = CertificateCache()
    device.include_router(scep.router)
    device.include_router(enroll.router)
    device.include_router(checkin.router)
    device.include_router(enroll_links.router)
    # Added first so it sits inside the unexpected-error guard that install_error_handlers adds.
    device.add_middleware(BodySizeLimit, max_bytes=MAX_REQUEST_BYTES, refuse=refuse_plain)
    install_error_handlers(device)
    return device
