"""``X-Server-Protocol-Version`` gating: which fields a caller of each protocol version gets (reference 2.3).

A missing header means the oldest behaviour (version 1). Apple adds fields with new versions and a client must
not see fields newer than the version it asked for, so records are stored complete and trimmed when served.
"""

from __future__ import annotations

from typing import Any

#: The newest version the simulator knows; higher values behave like it.
NEWEST_VERSION = 10

_DEVICE_FIELDS_SINCE: dict[str, int] = {
    "os": 2,
    "device_family": 2,
    "mdm_migration_deadline": 8,
    "eid": 10,
    "ethernet_mac_address": 10,
    "wifi_mac_address": 10,
    "bluetooth_mac_address": 10,
    "imei": 10,
    "meid": 10,
    "is_replacement_device": 10,
    "released_by_replacement": 10,
}
_ACCOUNT_FIELDS_SINCE: dict[str, int] = {"org_id": 3, "org_id_hash": 3, "org_type": 3, "org_version": 3, "urls": 3}
_PROFILE_FIELDS_SINCE: dict[str, int] = {
    "auto_advance_setup": 2,
    "await_device_configured": 2,
    "is_multi_user": 2,
    "support_email_address": 2,
}
THROTTLED_SINCE = 9
RETRY_AFTER_SINCE = 10
IPADOS_SINCE = 7


def parse_version(header: str | None) -> int:
    """The caller's protocol version; absent or unreadable -> 1 (the oldest behaviour), capped at the newest."""
    if header is None:
        return 1
    text = header.strip()
    if not text.isdigit() or len(text) > 4:
        return 1
    return max(1, min(int(text), NEWEST_VERSION))


def _trim(record: dict[str, Any], since: dict[str, int], version: int) -> dict[str, Any]:
    return {key: value for key, value in record.items() if since.get(key, 1) <= version}


def device_for_version(record: dict[str, Any], version: int) -> dict[str, Any]:
    """A device record as a caller of ``version`` sees it; iPads say ``iPadOS`` only from version 7."""
    served = _trim(record, _DEVICE_FIELDS_SINCE, version)
    if record.get("device_family") == "iPad" and record.get("os") in ("iOS", "iPadOS") and "os" in served:
        served["os"] = "iPadOS" if version >= IPADOS_SINCE else "iOS"
    return served


def account_for_version(record: dict[str, Any], version: int) -> dict[str, Any]:
    return _trim(record, _ACCOUNT_FIELDS_SINCE, version)


def profile_for_version(record: dict[str, Any], version: int) -> dict[str, Any]:
    return _trim(record, _PROFILE_FIELDS_SINCE, version)


def assignment_status_for_version(status: str, version: int) -> str:
    """``THROTTLED`` exists from version 9; older callers are told ``FAILED`` (reference 3.7)."""
    if status == "THROTTLED" and version < THROTTLED_SINCE:
        return "FAILED"
    return status
