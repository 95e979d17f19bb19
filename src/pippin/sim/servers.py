"""What an admin does to "MDM servers" and terms in Business Manager: create, re-key, delete, accept terms.

Deleting a server keeps its row so its token answers 403 ACCESS_DENIED (reference 2.2) rather than being
unknown, and releases its devices with a ``deleted`` event each, as Business Manager does.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.sim.assignment import unassign_devices
from pippin.sim.models import SimDevice, SimMDMServer, SimOrganization, SimServerToken
from pippin.sim.portal_errors import invalid, not_found
from pippin.sim.tokens import load_certificate_pem, normalized_pem

MAX_NAME_LENGTH = 255
MAX_APPLE_ID_LENGTH = 320


def create_server(
    session: Session, *, name: str, public_key_pem: str, admin_apple_id: str, now: datetime, wall_now: datetime
) -> SimMDMServer:
    """Add an MDM server with the certificate its token will be encrypted to.

    The certificate's validity is checked at ``wall_now`` (the real time): the MDM server dated it by its own
    clock, which the simulator's settable one (``now``, the server's creation time) may be far ahead of.
    """
    name = _clean_text(name, field="name", limit=MAX_NAME_LENGTH)
    admin_apple_id = _clean_apple_id(admin_apple_id)
    certificate = load_certificate_pem(public_key_pem, now=wall_now)
    server = SimMDMServer(
        server_uuid=secrets.token_hex(16).upper(),
        name=name,
        admin_apple_id=admin_apple_id,
        public_key_pem=normalized_pem(certificate),
        access_denied=False,
        created_at=now,
    )
    session.add(server)
    session.flush()
    return server


def get_server(session: Session, *, server_uuid: str, include_deleted: bool = False) -> SimMDMServer:
    """The server with ``server_uuid``; a 404 PortalError when there is none (or it was deleted)."""
    server = session.scalars(select(SimMDMServer).where(SimMDMServer.server_uuid == server_uuid)).one_or_none()
    if server is None or (server.deleted_at is not None and not include_deleted):
        raise not_found("server_not_found", f"No MDM server {server_uuid!r}; list them with GET /portal/mdm-servers.")
    return server


def list_servers(session: Session, *, include_deleted: bool = False) -> list[dict[str, Any]]:
    """Every MDM server with its device count and current token, for the portal's list."""
    query = select(SimMDMServer).order_by(SimMDMServer.id)
    if not include_deleted:
        query = query.where(SimMDMServer.deleted_at.is_(None))
    counts = dict(
        session.execute(
            select(SimDevice.server_id, func.count())
            .where(SimDevice.server_id.is_not(None))
            .group_by(SimDevice.server_id)
        ).all()
    )
    tokens = {
        token.server_id: token
        for token in session.scalars(select(SimServerToken).where(SimServerToken.revoked_at.is_(None)))
    }
    return [
        server_view(server, device_count=counts.get(server.id, 0), token=tokens.get(server.id))
        for server in session.scalars(query)
    ]


def server_view(server: SimMDMServer, *, device_count: int, token: SimServerToken | None) -> dict[str, Any]:
    """The portal's JSON for one server; never the token's secrets."""
    return {
        "server_uuid": server.server_uuid,
        "name": server.name,
        "admin_apple_id": server.admin_apple_id,
        "created_at": _iso(server.created_at),
        "deleted_at": _iso(server.deleted_at),
        "device_count": device_count,
        "token": None
        if token is None
        else {
            "issued_at": _iso(token.issued_at),
            "expires_at": _iso(token.expires_at),
            "downloaded_by": token.downloaded_by,
        },
    }


def replace_public_key(session: Session, *, server_uuid: str, public_key_pem: str, wall_now: datetime) -> SimMDMServer:
    """Upload a new certificate, valid at ``wall_now`` (the real time): later downloads encrypt to it; the
    current token keeps working."""
    certificate = load_certificate_pem(public_key_pem, now=wall_now)
    server = get_server(session, server_uuid=server_uuid)
    server.public_key_pem = normalized_pem(certificate)
    return server


def delete_server(session: Session, *, server_uuid: str, now: datetime) -> int:
    """Delete a server: its token gets ACCESS_DENIED, its devices are released. Returns how many."""
    server = get_server(session, server_uuid=server_uuid)
    serials = list(session.scalars(select(SimDevice.serial_number).where(SimDevice.server_id == server.id)))
    released = unassign_devices(session, serials=serials, now=now)
    server.deleted_at = now
    server.access_denied = True
    return released


def set_terms_pending(session: Session, organization: SimOrganization, *, pending: bool) -> None:
    """Publish new terms (every DEP call then gets 403 T_C_NOT_SIGNED) or accept them."""
    organization.terms_pending = pending


def _clean_text(value: str, *, field: str, limit: int) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise invalid("invalid_field", f"{field} must not be empty.")
    if len(cleaned) > limit or any(ord(char) < 32 for char in cleaned):
        raise invalid("invalid_field", f"{field} must be one line of at most {limit} characters.")
    return cleaned


def _clean_apple_id(value: str) -> str:
    cleaned = _clean_text(value, field="admin_apple_id", limit=MAX_APPLE_ID_LENGTH)
    local, _, domain = cleaned.partition("@")
    if not local or "." not in domain or " " in cleaned:
        raise invalid("invalid_field", "admin_apple_id must be an Apple Account email address, like admin@example.com.")
    return cleaned


def clean_apple_id(value: str) -> str:
    """Validate an Apple Account given with a request (who downloads a token, who assigns devices)."""
    return _clean_apple_id(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")
