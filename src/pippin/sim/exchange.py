"""One DEP API exchange, in Apple's order: User-Agent, faults, authentication, body, the endpoint's work.

Every route of ``dep_api.py`` goes through :func:`serve` (or :func:`serve_session` for ``GET /session``), so the
cross-cutting rules hold everywhere: ``400 USER_AGENT_MISSING`` without a User-Agent (reference 2.2), injected
faults decided and committed before the request touches anything, the endpoint's work in one transaction that
an error rolls back whole, Apple's content type and bare error codes on every answer, and a rotated
``X-ADM-Auth-Session`` header when the session is past half its life.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from pippin.sim.faults import FaultDecision, decide
from pippin.sim.models import SimMDMServer, SimOrganization, SimSession
from pippin.sim.oauth import verify_session_request
from pippin.sim.sessions import SESSION_HEADER, authenticate, check_server_access, issue_session
from pippin.sim.state import SimState
from pippin.sim.versions import parse_version
from pippin.sim.wire import AppleError, BrokenResponse, apple_error, apple_json, parse_json_object, read_body


@dataclass(frozen=True)
class DEPCall:
    """What an endpoint's handler gets: an open transaction, the caller, and the request's content."""

    session: Session
    org: SimOrganization
    server: SimMDMServer
    version: int
    now: datetime
    body: dict[str, Any]
    query: Mapping[str, str]
    faults: FaultDecision


Handler = Callable[[DEPCall], dict[str, Any]]


@dataclass(frozen=True)
class _Incoming:
    """The parts of an HTTP request the worker thread needs (the Request itself stays on the event loop)."""

    endpoint: str
    version: int
    session_header: str | None
    raw_body: bytes | None
    query: dict[str, str]


def _state(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


def _check_user_agent(request: Request) -> None:
    if not request.headers.get("user-agent", "").strip():
        raise AppleError(400, "USER_AGENT_MISSING")


def _faults(state: SimState, endpoint: str, session_header: str | None) -> FaultDecision:
    """Draw this request's faults and save their progress; a ``session_expired`` fault ends the session now."""
    with state.transaction() as session:
        org = state.organization(session)
        stored = org.faults or {}
        if not stored.get("config"):
            return FaultDecision()
        decision, updated = decide(stored, endpoint)
        org.faults = updated
        if decision.expire_session and session_header and len(session_header) <= 255:
            row = session.get(SimSession, session_header)
            if row is not None:
                row.expires_at = min(row.expires_at, state.clock.now())
    return decision


def _obey(decision: FaultDecision) -> Response | None:
    if decision.delay_seconds:
        time.sleep(decision.delay_seconds)
    if decision.error is not None:
        raise decision.error
    if decision.drop_connection:
        return BrokenResponse()
    return None


def _handle(state: SimState, incoming: _Incoming, handler: Handler) -> Response:
    decision = _faults(state, incoming.endpoint, incoming.session_header)
    dropped = _obey(decision)
    if dropped is not None:
        return dropped
    with state.transaction() as session:
        org = state.organization(session)
        now = state.clock.now()
        caller = authenticate(session, header=incoming.session_header, org=org, now=now)
        body = parse_json_object(incoming.raw_body) if incoming.raw_body is not None else {}
        call = DEPCall(session, org, caller.server, incoming.version, now, body, incoming.query, decision)
        payload = handler(call)
    headers = {SESSION_HEADER: caller.rotated_to} if caller.rotated_to else None
    return apple_json(payload, headers=headers)


async def serve(request: Request, endpoint: str, handler: Handler, *, with_body: bool) -> Response:
    """Answer one authenticated DEP API request with ``handler``'s payload, or Apple's error."""
    try:
        _check_user_agent(request)
        incoming = _Incoming(
            endpoint=endpoint,
            version=parse_version(request.headers.get("x-server-protocol-version")),
            session_header=request.headers.get(SESSION_HEADER),
            raw_body=await read_body(request) if with_body else None,
            query=dict(request.query_params),
        )
        return await run_in_threadpool(_handle, _state(request), incoming, handler)
    except AppleError as error:
        return apple_error(error)


def _signed_url(request: Request) -> str:
    """The URL the client signed: scheme, Host header and path as received (plus the query, if any)."""
    host = request.headers.get("host") or request.url.netloc
    url = f"{request.url.scheme}://{host}{request.url.path}"
    return f"{url}?{request.url.query}" if request.url.query else url


def _open_session(state: SimState, authorization: str | None, url: str) -> Response:
    dropped = _obey(_faults(state, "get_session", None))
    if dropped is not None:
        return dropped
    with state.transaction() as session:
        org = state.organization(session)
        now = state.clock.now()
        token = verify_session_request(session, header=authorization, url=url, now=now, real_now=datetime.now(UTC))
        server = session.get(SimMDMServer, token.server_id)
        assert server is not None
        check_server_access(server, org)
        issued = issue_session(session, token=token, org=org, now=now)
    return apple_json({"auth_session_token": issued.token})


async def serve_session(request: Request) -> Response:
    """``GET /session``: OAuth 1.0a in, ``{"auth_session_token": ...}`` out (reference 2.1)."""
    try:
        _check_user_agent(request)
        authorization = request.headers.get("authorization")
        return await run_in_threadpool(_open_session, _state(request), authorization, _signed_url(request))
    except AppleError as error:
        return apple_error(error)
