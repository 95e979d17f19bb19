"""The MachineInfo a device presents at enrollment (apple-device-management `other/machineinfo.yaml`), signed.

The same signed bytes go in the body of the POST to the ConfigurationURL and, base64, in the
``x-apple-aspen-deviceinfo`` header of the web view (reference §0.3).
"""

from __future__ import annotations

import base64
import plistlib

from pippin.sim.iphone.cms import sign_ber_sha1
from pippin.sim.iphone.identity import DeviceFacts, DeviceIdentity


def machine_info_plist(facts: DeviceFacts) -> bytes:
    """The XML plist; IMEI and MEID only on cellular models, the update keys only where iOS sends them."""
    info: dict[str, object] = {
        "UDID": facts.udid,
        "SERIAL": facts.serial_number,
        "PRODUCT": facts.product,
        "VERSION": facts.build_version,
        "OS_VERSION": facts.os_version,
        "LANGUAGE": facts.language,
    }
    if facts.imei:
        info["IMEI"] = facts.imei
    if facts.meid:
        info["MEID"] = facts.meid
    if facts.can_request_software_update:
        info["MDM_CAN_REQUEST_SOFTWARE_UPDATE"] = True
        # iOS 17.4+ names itself to the software update catalogue (GDMF) by its product type.
        info["SOFTWARE_UPDATE_DEVICE_ID"] = facts.product
    return plistlib.dumps(info, fmt=plistlib.FMT_XML, sort_keys=True)


def signed_machine_info(facts: DeviceFacts, identity: DeviceIdentity) -> bytes:
    """MachineInfo as a real device posts it: CMS SignedData, BER with indefinite lengths, SHA-1."""
    return sign_ber_sha1(machine_info_plist(facts), key=identity.key, certificate=identity.certificate)


def device_info_header(signed: bytes) -> str:
    """The value of ``x-apple-aspen-deviceinfo``: the signed MachineInfo in base64."""
    return base64.b64encode(signed).decode("ascii")
