"""The device's side of APNs, as plain HTTP on the simulator's app: get a push token, wait for pushes, drop the token.

A real iPhone keeps a connection open to APNs and is handed its notifications; a simulated device (Pippin's, or
another project's) does the same with a long poll: ``GET /apns/tokens/{token}/next?timeout=SECONDS``. What APNs
stored for the device while nobody waited is handed over first (:mod:`pippin.sim.apns_delivery`). Also here: the
counts benchmarks read (``GET /apns/stats``) and the CA certificate a provider must trust to reach the simulated
APNs over TLS (``GET /apns/ca.pem``). Refusals are the portal's JSON errors ``{"error": code, "detail": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import Field, StrictStr

from pippin.sim.apns_delivery import APNsDelivery, Notification, TokenRecord, UnknownToken
from pippin.sim.apns_tls import ca_pem
from pippin.sim.portal import PortalRoute, Strict, sim_state
from pippin.sim.portal_errors import PortalError, invalid, not_found
from pippin.sim.wire import iso

router = APIRouter(prefix="/apns", tags=["apns"], route_class=PortalRoute)

DEFAULT_WAIT_SECONDS = 30.0
MAX_WAIT_SECONDS = 300.0
_TOKEN = re.compile(r"[0-9a-fA-F]{64}")
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,255}")


class TokenCreate(Strict):
    topic: StrictStr = Field(
        max_length=255,
        description="The push topic the device registers for: the MDM payload's Topic, com.apple.mgmt.External.…",
    )


def delivery(request: Request) -> APNsDelivery:
    found: APNsDelivery = request.app.state.apns
    return found


def _token(raw: str) -> str:
    if not _TOKEN.fullmatch(raw):
        raise invalid("bad_token", "A push token is 64 hexadecimal characters, as POST /apns/tokens returns it.")
    return raw.lower()


def _record(apns: APNsDelivery, raw: str) -> TokenRecord:
    record = apns.find(_token(raw))
    if record is None:
        raise not_found("unknown_token", "No such push token; get one with POST /apns/tokens.")
    return record


def _view(record: TokenRecord) -> dict[str, Any]:
    gone = record.unregistered_at
    return {
        "token": record.token,
        "topic": record.topic,
        "created_at": iso(record.created_at),
        "unregistered_at": iso(gone) if gone else None,
    }


def _wait_seconds(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_WAIT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_WAIT_SECONDS:
        raise invalid("bad_timeout", f"timeout is a number of seconds from 0 to {MAX_WAIT_SECONDS:g}.")
    return seconds


def _delivered(notification: Notification) -> Response:
    headers = {"apns-id": notification.apns_id, "apns-priority": str(notification.priority)}
    if notification.push_type:
        headers["apns-push-type"] = notification.push_type
    if notification.expires_at is not None:
        headers["apns-expiration"] = str(int(notification.expires_at.timestamp()))
    return Response(notification.payload, media_type="application/json", headers=headers)


@router.post("/tokens", status_code=201, summary="Register a device for a topic and get its push token")
def create_token(body: TokenCreate, request: Request) -> dict[str, Any]:
    """The device's new push token (64 hex characters), registered for ``topic``: what it sends in TokenUpdate."""
    if not _TOPIC.fullmatch(body.topic):
        raise invalid("bad_topic", "topic is 1-255 letters, digits, '.', '-' or '_', e.g. com.apple.mgmt.External.x")
    return _view(delivery(request).register(body.topic))


@router.get("/tokens/{token}", summary="A push token and its counts")
def get_token(token: str, request: Request) -> dict[str, Any]:
    apns = delivery(request)
    record = _record(apns, token)
    return {**_view(record), "stats": apns.stats(record.token)}


@router.get(
    "/tokens/{token}/next",
    summary="Wait for the token's next notification",
    responses={
        200: {"description": "The payload the provider sent, as sent; headers apns-id, apns-priority, …"},
        204: {"description": "Nothing arrived within the timeout"},
        410: {"description": "The token was deleted"},
    },
)
async def next_notification(
    token: str,
    request: Request,
    timeout: Annotated[
        str | None, Query(description=f"Seconds to wait, 0 to {MAX_WAIT_SECONDS:g} (default 30); 0 = only stored")
    ] = None,
) -> Response:
    """What APNs stored for the device while it was offline (not expired), else the next push within ``timeout``."""
    apns = delivery(request)
    seconds = _wait_seconds(timeout)
    record = _record(apns, token)
    if record.unregistered_at is not None:
        raise PortalError(410, "unregistered", "This push token was deleted; register again with POST /apns/tokens.")
    waiting = asyncio.ensure_future(apns.next_notification(record.token, seconds))
    hung_up = asyncio.ensure_future(_hang_up(request))
    try:
        await asyncio.wait({waiting, hung_up}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hung_up.cancel()
        if not waiting.done():
            # The device went away: stop waiting, so what a push hands over now is stored for its next wait.
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
    if waiting.cancelled():
        return Response(status_code=204)
    try:
        notification = waiting.result()
    except UnknownToken:
        raise not_found("unknown_token", "No such push token; get one with POST /apns/tokens.") from None
    if notification is None:
        return Response(status_code=204)
    return _delivered(notification)


async def _hang_up(request: Request) -> None:
    """Returns when the client closes its connection (the body was read already, so only that can come)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.delete("/tokens/{token}", summary="Delete a push token (later pushes answer 410 Unregistered)")
def delete_token(token: str, request: Request) -> dict[str, Any]:
    """As when the app or MDM profile is removed: pushes to it now answer 410 with this time as ``timestamp``."""
    apns = delivery(request)
    record = apns.unregister(_record(apns, token).token)
    assert record.unregistered_at is not None
    return {**_view(record), "timestamp": int(record.unregistered_at.timestamp() * 1000)}


@router.get("/stats", summary="Counts of pushes received, delivered, stored, coalesced, expired and discarded")
def stats(request: Request, token: str | None = None) -> dict[str, Any]:
    """All tokens together, or one with ``?token=``; ``rejected`` counts refused pushes by Apple's reason."""
    apns = delivery(request)
    if token is None:
        return apns.stats()
    return apns.stats(_record(apns, token).token)


@router.get(
    "/ca.pem",
    summary="The CA certificate the simulated APNs server's TLS certificate chains to",
    responses={200: {"content": {"application/x-pem-file": {}}}},
)
def tls_ca(request: Request) -> Response:
    """A provider trusts this to reach the simulated APNs over HTTPS (Apple's own is a public CA)."""
    return Response(ca_pem(sim_state(request).data_dir), media_type="application/x-pem-file")
