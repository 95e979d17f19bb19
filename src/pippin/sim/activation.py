"""The device side of Apple: what a device at Setup Assistant receives as its cloud configuration.

When an assigned device is switched on (or erased), it asks Apple for its activation record; Apple answers
with the DEP profile assigned to it, in the CamelCase keys devices show (reference 7.1), and marks the
device record ``pushed`` with ``profile_push_time`` (a ``modified`` event for its MDM server, reference 4).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from pippin.sim.events import record_event
from pippin.sim.models import SimDevice, SimMDMServer, SimOrganization, SimProfile
from pippin.sim.portal_errors import not_found

# Profile key -> cloud configuration key, for the values copied as they are.
_COPIED = {
    "url": "ConfigurationURL",
    "configuration_web_url": "ConfigurationWebURL",
    "is_supervised": "IsSupervised",
    "is_mandatory": "IsMandatory",
    "await_device_configured": "AwaitDeviceConfigured",
    "is_multi_user": "IsMultiUser",
    "allow_pairing": "AllowPairing",
    "auto_advance_setup": "AutoAdvanceSetup",
    "skip_setup_items": "SkipSetup",
    "org_magic": "OrganizationMagic",
    "support_phone_number": "OrganizationSupportPhone",
    "support_email_address": "OrganizationSupportEmail",
    "department": "Department",
    "language": "Language",
    "region": "Region",
    "anchor_certs": "AnchorCertificates",
    "supervising_host_certs": "SupervisorHostCertificates",
}
# Apple's defaults for booleans a profile may omit (reference 5).
_DEFAULTS = {"is_supervised": False, "is_mandatory": False, "allow_pairing": True, "await_device_configured": False}


def fetch_cloud_configuration(
    session: Session, *, organization: SimOrganization, serial_number: str, now: datetime
) -> dict[str, Any]:
    """The cloud configuration of ``serial_number``, marking it pushed; 404 when no profile is assigned."""
    device = session.get(SimDevice, serial_number)
    if device is None:
        raise not_found("device_not_found", f"No device {serial_number!r} belongs to this organisation.")
    server = session.get(SimMDMServer, device.server_id) if device.server_id is not None else None
    if server is None or server.deleted_at is not None:
        raise not_found("not_assigned", "This device is not assigned to an MDM server; it sets up unmanaged.")
    if device.profile_uuid is None or device.profile_status not in ("assigned", "pushed"):
        raise not_found("no_profile", "This device's MDM server has not assigned it a profile.")
    profile = session.get(SimProfile, device.profile_uuid)
    if profile is None:
        raise not_found("no_profile", "The profile assigned to this device no longer exists.")
    configuration = cloud_configuration(profile.body, organization=organization)
    device.profile_status = "pushed"
    device.profile_push_time = now
    session.flush()
    record_event(session, server_id=server.id, device=device, op_type="modified", at=now)
    return configuration


def cloud_configuration(profile: dict[str, Any], *, organization: SimOrganization) -> dict[str, Any]:
    """A stored profile as a device sees it: CamelCase, with the organisation's name and address added."""
    values = {**_DEFAULTS, **profile}
    configuration: dict[str, Any] = {
        "OrganizationName": organization.org_name,
        "OrganizationAddress": organization.org_address,
        # The device is told whether it may remove MDM, the reverse of the profile's is_mdm_removable.
        "IsMDMUnremovable": not values.get("is_mdm_removable", True),
    }
    for key, device_key in _COPIED.items():
        if values.get(key) is not None:
            configuration[device_key] = values[key]
    configuration.setdefault("SkipSetup", [])
    return configuration
