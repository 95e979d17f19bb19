"""Test controls under ``/portal/``: the simulator's clock, fault injection, and the session lifetime.

No authentication: these exist for tests and demos on a loopback port. Bodies are strict JSON; anything invalid
answers 400 ``{"error": ...}`` saying what is wrong, and changes nothing.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from pippin.sim.faults import FaultConfig, load_config
from pippin.sim.state import SimState
from pippin.sim.wire import iso

router = APIRouter(prefix="/portal", tags=["controls"])

#: Ten years: far enough for token expiry tests, small enough that no datetime overflows.
MAX_ADVANCE_SECONDS = 10 * 366 * 24 * 3600
MAX_CONTROL_BODY = 1024 * 1024
MIN_SESSION_TTL, MAX_SESSION_TTL = 1, 24 * 3600


class ControlError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _state(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_CONTROL_BODY:
        raise ControlError(f"the body is larger than {MAX_CONTROL_BODY} bytes")
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ControlError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ControlError("the body must be a JSON object")
    return value


def _bad(error: ControlError) -> JSONResponse:
    return JSONResponse({"error": error.message}, status_code=400)


def _clock_view(state: SimState) -> dict[str, Any]:
    now = state.clock.now()
    return {"now": iso(now), "offset_seconds": state.clock.offset.total_seconds()}


@router.get("/clock")
def get_clock(request: Request) -> dict[str, Any]:
    return _clock_view(_state(request))


@router.post("/clock")
async def advance_clock(request: Request) -> JSONResponse:
    """``{"advance_seconds": N}``: move Apple's clock forward (never back: cursors and tokens only age)."""
    try:
        body = await _json_object(request)
        if set(body) != {"advance_seconds"}:
            raise ControlError('expected exactly {"advance_seconds": <number of seconds, 0 or more>}')
        seconds = body["advance_seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
            raise ControlError("advance_seconds must be a finite number")
        if not 0 <= seconds <= MAX_ADVANCE_SECONDS:
            raise ControlError(f"advance_seconds must be between 0 and {MAX_ADVANCE_SECONDS}")
    except ControlError as error:
        return _bad(error)
    state = _state(request)
    state.advance_clock(float(seconds))
    return JSONResponse(_clock_view(state))


def _faults_view(stored: dict[str, Any]) -> dict[str, Any]:
    return {"config": load_config(stored).to_wire(), "progress": stored.get("progress", {})}


@router.get("/faults")
def get_faults(request: Request) -> dict[str, Any]:
    state = _state(request)
    with state.transaction() as session:
        return _faults_view(state.organization(session).faults or {})


@router.put("/faults")
async def put_faults(request: Request) -> JSONResponse:
    """Replace the fault configuration (schema in :mod:`pippin.sim.faults`); ``{}`` turns every fault off."""
    try:
        body = await _json_object(request)
        config = FaultConfig.model_validate(body)
    except ControlError as error:
        return _bad(error)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'body'}: {item['msg']}" for item in exc.errors()
        )
        return _bad(ControlError(f"invalid fault configuration: {problems}"))
    stored = {"config": config.model_dump(), "progress": {}} if body else {}
    state = _state(request)
    with state.transaction() as session:
        state.organization(session).faults = stored
    state.faults_revision += 1
    return JSONResponse(_faults_view(stored))


@router.get("/session")
def get_session_ttl(request: Request) -> dict[str, Any]:
    state = _state(request)
    with state.transaction() as session:
        return {"ttl_seconds": state.organization(session).session_ttl_seconds}


@router.put("/session")
async def put_session_ttl(request: Request) -> JSONResponse:
    """``{"ttl_seconds": N}``: the lifetime of sessions issued from now on (existing ones keep theirs)."""
    try:
        body = await _json_object(request)
        ttl = body.get("ttl_seconds")
        if set(body) != {"ttl_seconds"} or isinstance(ttl, bool) or not isinstance(ttl, int):
            raise ControlError('expected exactly {"ttl_seconds": <whole seconds>}')
        if not MIN_SESSION_TTL <= ttl <= MAX_SESSION_TTL:
            raise ControlError(f"ttl_seconds must be between {MIN_SESSION_TTL} and {MAX_SESSION_TTL}")
    except ControlError as error:
        return _bad(error)
    state = _state(request)
    with state.transaction() as session:
        state.organization(session).session_ttl_seconds = ttl
    return JSONResponse({"ttl_seconds": ttl})
