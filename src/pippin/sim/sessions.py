"""``X-ADM-Auth-Session`` tokens: issue, check and rotate them (reference 2.1-2.2).

Apple's session lifetime is short and undocumented; the simulator's is ``SimOrganization.session_ttl_seconds``
(5 minutes unless a test changes it). An expired session answers 401 ``UNAUTHORIZED`` (re-authenticate), an
unknown one 403 ``FORBIDDEN``. Past half its life a session is rotated: the response carries a new
``X-ADM-Auth-Session`` and the old token stays valid until it expires, so a client that ignores the header
fails later, as it would against Apple.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from pippin.sim.models import SimMDMServer, SimOrganization, SimServerToken, SimSession
from pippin.sim.wire import AppleError

SESSION_HEADER = "X-ADM-Auth-Session"


@dataclass(frozen=True)
class Authenticated:
    """Who is calling: the MDM server, the token its session came from, and a rotated session if one was issued."""

    server: SimMDMServer
    token: SimServerToken
    rotated_to: str | None


def issue_session(session: Session, *, token: SimServerToken, org: SimOrganization, now: datetime) -> SimSession:
    """A new session for ``token``; shaped like Apple's (epoch-ms prefix, ``O`` separators, hex)."""
    value = f"{int(now.timestamp() * 1000)}O{secrets.token_hex(40)}O{secrets.token_hex(32)}"
    row = SimSession(
        token=value,
        server_id=token.server_id,
        server_token_id=token.id,
        created_at=now,
        expires_at=now + timedelta(seconds=org.session_ttl_seconds),
    )
    session.add(row)
    return row


def check_server_access(server: SimMDMServer, org: SimOrganization) -> None:
    """A deleted server is ``ACCESS_DENIED``; unaccepted terms are ``T_C_NOT_SIGNED`` on every call."""
    if server.access_denied:
        raise AppleError(403, "ACCESS_DENIED")
    if org.terms_pending:
        raise AppleError(403, "T_C_NOT_SIGNED")


def authenticate(session: Session, *, header: str | None, org: SimOrganization, now: datetime) -> Authenticated:
    """The caller of a DEP API request, from its ``X-ADM-Auth-Session`` header."""
    if not header:
        raise AppleError(401, "UNAUTHORIZED")
    row = session.get(SimSession, header) if len(header) <= 255 else None
    if row is None:
        raise AppleError(403, "FORBIDDEN")
    token = session.get(SimServerToken, row.server_token_id)
    server = session.get(SimMDMServer, row.server_id)
    if token is None or server is None:
        raise AppleError(403, "FORBIDDEN")
    # A session dies with its token: re-authenticating then tells the client why (token_rejected/expired).
    if row.expires_at <= now or token.expires_at <= now or token.revoked_at is not None:
        raise AppleError(401, "UNAUTHORIZED")
    check_server_access(server, org)
    rotated_to = None
    if now >= row.created_at + (row.expires_at - row.created_at) / 2:
        rotated_to = issue_session(session, token=token, org=org, now=now).token
    return Authenticated(server=server, token=token, rotated_to=rotated_to)
