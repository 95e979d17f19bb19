"""``GET /account``: the MDM server and organisation a token belongs to (reference 3.1)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.sim.device_feed import DEFAULT_LIMIT, MAXIMUM_LIMIT
from pippin.sim.models import SimMDMServer, SimOrganization, SimServerToken
from pippin.sim.versions import account_for_version

_PAGED = {"default": DEFAULT_LIMIT, "maximum": MAXIMUM_LIMIT}
_URLS: list[dict[str, Any]] = [
    {"uri": "/session", "http_method": ["GET"]},
    {"uri": "/account", "http_method": ["GET"]},
    {"uri": "/server/devices", "http_method": ["POST"], "limit": _PAGED},
    {"uri": "/devices/sync", "http_method": ["POST"], "limit": _PAGED},
    {"uri": "/devices", "http_method": ["POST"]},
    {"uri": "/profile", "http_method": ["POST", "GET"]},
    {"uri": "/profile/devices", "http_method": ["DELETE", "POST", "PUT"]},
    {"uri": "/devices/disown", "http_method": ["POST"]},
    {"uri": "/device/activationlock", "http_method": ["POST"]},
]


def account(session: Session, *, server: SimMDMServer, org: SimOrganization, version: int) -> dict[str, Any]:
    """``admin_id`` is the Apple Account that downloaded the server's current token, else the server's admin."""
    token = session.scalars(
        select(SimServerToken).where(SimServerToken.server_id == server.id).order_by(SimServerToken.id.desc()).limit(1)
    ).first()
    admin_id = (token.downloaded_by if token is not None else None) or server.admin_apple_id
    record = {
        "server_name": server.name,
        "server_uuid": server.server_uuid,
        "admin_id": admin_id,
        "facilitator_id": admin_id,
        "org_name": org.org_name,
        "org_email": org.org_email,
        "org_phone": org.org_phone,
        "org_address": org.org_address,
        "org_id": org.org_id,
        "org_id_hash": org.org_id_hash,
        "org_type": org.org_type,
        "org_version": org.org_version,
        "urls": [dict(entry) for entry in _URLS],
    }
    return account_for_version(record, version)
