"""``POST /mdm/enroll/{reference}``: where a device in Setup Assistant posts its signed MachineInfo (ADE).

The route only translates: it reads at most ``MAX_BODY_BYTES`` of the body, calls
``pippin.mdm.ade_enrollment.enroll_ade_device`` and answers the signed profile as
``application/x-apple-aspen-config``, or Apple's 403 plist for a device Pippin does not enroll
(``device/refusals.py``). Every other failure is ``device/errors.py``'s: 400 for a body that is not a device's
signed MachineInfo, 404 for a reference Pippin did not sign, 500 (retry later) while the server lacks its trust
anchors or push certificate; never 401.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from pippin.device.refusals import software_update_required, unrecognized_device
from pippin.mdm.ade_enrollment import DeviceNotRecognized, SoftwareUpdateRequired, enroll_ade_device
from pippin.mdm.enrollment_profile import PROFILE_MEDIA_TYPE
from pippin.mdm.machine_info import MAX_BODY_BYTES
from pippin.server.deps import DBSession, Resources
from pippin.server.errors import RequestTooLarge

router = APIRouter()


async def _machine_info_body(request: Request) -> bytes:
    """The body, read only up to the size of any MachineInfo: a larger one is refused before it is all read."""
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_BODY_BYTES:
            raise RequestTooLarge(f"The body is larger than any MachineInfo ({MAX_BODY_BYTES // 1024} KiB at most).")
    return bytes(received)


MachineInfoBody = Annotated[bytes, Depends(_machine_info_body)]


@router.post("/enroll/{reference}")
def enroll_ade(reference: str, body: MachineInfoBody, session: DBSession, resources: Resources) -> Response:
    try:
        issued = enroll_ade_device(
            session,
            settings=resources.settings,
            box=resources.secret_box,
            generate_key=resources.generate_key,
            now=resources.clock(),
            reference=reference,
            body=body,
        )
    except DeviceNotRecognized:
        return unrecognized_device()
    except SoftwareUpdateRequired as required:
        return software_update_required(required.os_version, required.build_version)
    return Response(
        issued.profile,
        media_type=PROFILE_MEDIA_TYPE,
        headers={"Cache-Control": "no-store", "Content-Disposition": 'attachment; filename="enroll.mobileconfig"'},
    )
