"""``GET /mdm/enroll/links/{token}``: the enrollment profile of a manual enrollment link (``mdm/enrollment_links.py``).

Opened in Safari on a device (or fetched by a tool): a live link answers the signed profile as
``application/x-apple-aspen-config``, which the device offers to install; an unknown link 404 and an expired or
used-up one 410, each with one line saying so, as every device endpoint answers (``device/errors.py``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pippin.device.errors import plain_error
from pippin.mdm import enrollment_links as link_service
from pippin.mdm.enrollment_profile import PROFILE_MEDIA_TYPE
from pippin.server.resources import ServerResources
from pippin.store.db import transaction

router = APIRouter()


@router.get("/enroll/links/{token}")
def enrollment_link(request: Request, token: str) -> Response:
    resources: ServerResources = request.app.state.resources
    try:
        # A write: the SCEP CA and the server identity are made on the first profile Pippin hands out.
        with transaction(resources.session_factory) as session:
            profile = link_service.link_profile(
                session,
                settings=resources.settings,
                box=resources.secret_box,
                generate_key=resources.generate_key,
                token=token,
                now=resources.clock(),
            )
    except link_service.LinkRefused as refused:
        return plain_error(410 if refused.gone else 404, refused.message)
    return Response(
        profile,
        media_type=PROFILE_MEDIA_TYPE,
        headers={"Cache-Control": "no-store", "Content-Disposition": 'attachment; filename="enroll.mobileconfig"'},
    )
