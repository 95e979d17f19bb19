"""Apple's documented 403 answers to a device that asks to enroll: XML plists in the shape of ``mdm/errors/*.yaml``.

Unlike ``device/errors.py``'s plain-text failures, the device reads these bodies:
``com.apple.unrecognized.device`` (iOS 17+) tells it this server does not know it, in place of the 401 that would
otherwise say so; ``com.apple.softwareupdate.required`` (iOS 17+) tells it to update to ``OSVersion`` before it may
enroll (reference ``apple-mdm-updates-2026.md`` section 3, "Enrollment-time errors"). Apple asks for a Content-Type
naming the format; Pippin answers XML plists, as it does everywhere else on the device endpoints.
"""

from __future__ import annotations

import plistlib
from typing import Any

from starlette.responses import Response

#: The Content-Type of an XML plist body, as Apple's error schemas ask it to be named.
PLIST_MEDIA_TYPE = "application/xml"

UNRECOGNIZED_DEVICE = "com.apple.unrecognized.device"
SOFTWARE_UPDATE_REQUIRED = "com.apple.softwareupdate.required"


def _refusal(body: dict[str, Any]) -> Response:
    return Response(
        plistlib.dumps(body, fmt=plistlib.FMT_XML, sort_keys=True),
        status_code=403,
        media_type=PLIST_MEDIA_TYPE,
        headers={"Cache-Control": "no-store"},
    )


def unrecognized_device() -> Response:
    """403 ``com.apple.unrecognized.device``: this server does not enroll this device (``unrecognized.device.yaml``)."""
    return _refusal(
        {
            "code": UNRECOGNIZED_DEVICE,
            "description": "This device is not assigned to this MDM server with an enrollment profile.",
            "message": "This device cannot enroll with your organisation's management server. Contact your IT "
            "department.",
        }
    )


def software_update_required(os_version: str, build: str | None = None) -> Response:
    """403 ``com.apple.softwareupdate.required``: update to ``os_version`` (and ``build``, when given) first
    (``softwareupdate.required.yaml``)."""
    details = {"OSVersion": os_version}
    if build:
        details["BuildVersion"] = build
    return _refusal(
        {
            "code": SOFTWARE_UPDATE_REQUIRED,
            "description": f"Enrollment requires OS version {os_version} or later.",
            "message": f"Update this device to version {os_version} or later to continue setting it up.",
            "details": details,
        }
    )
