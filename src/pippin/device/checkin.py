"""The CheckInURL (``PUT /mdm/checkin``) and the ServerURL (``PUT /mdm/connect``) as devices reach them.

Each route only translates HTTP: it reads the bounded body, takes the device's proof of identity (the
``Mdm-Signature`` header, or the client certificate a trusted proxy forwards under
``PIPPIN_TRUSTED_CLIENT_CERT_HEADER``), and calls ``mdm/checkin.py`` in one transaction, off the event loop.
Refusals become plain 400s through ``device/errors.py`` (never 401: reference section 2) and roll back.

ServerURL: an enrolled device's report (``Idle``, or an answer) is stored and answered with its next command, or an
empty 200 when none waits (``mdm/connect.py``). Reports may be larger than check-ins (``MAX_REPORT_BYTES``).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from pippin.mdm.checkin import CheckinAnswer, handle_checkin
from pippin.mdm.checkin_wire import MAX_CHECKIN_BYTES, read_checkin
from pippin.mdm.command_wire import MAX_REPORT_BYTES, read_command_report
from pippin.mdm.connect import handle_connect
from pippin.mdm.device_auth import AuthenticatedDevice, CertificateCache, authenticate_device
from pippin.mdm.identities import IdentityStore
from pippin.server.deps import server_resources
from pippin.server.errors import RequestTooLarge
from pippin.server.proxies import trusted_proxy_of
from pippin.server.resources import ServerResources
from pippin.store.db import request_session

router = APIRouter()

_NO_STORE = {"Cache-Control": "no-store"}


def _proof(request: Request, resources: ServerResources) -> tuple[str | None, str | None]:
    """The Mdm-Signature, and the forwarded certificate when a trusted proxy sent it under the configured name."""
    signature = request.headers.get("mdm-signature")
    header = resources.settings.trusted_client_cert_header
    forwarded = None
    if header and trusted_proxy_of(request) is not None:
        forwarded = request.headers.get(header)
    return signature, forwarded


async def _body(request: Request, *, limit: int = MAX_CHECKIN_BYTES) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestTooLarge(f"The message is larger than {limit // 1024} KiB.")
    return bytes(body)


def _identities(request: Request) -> IdentityStore:
    store: IdentityStore = request.app.state.device_identities
    return store


def _authenticated(
    session: Session, request: Request, resources: ServerResources, *, body: bytes, now: datetime
) -> AuthenticatedDevice:
    """The enrollment whose identity signed ``body`` (or the trusted proxy forwarded), else a refusal."""
    signature, forwarded = _proof(request, resources)
    cache: CertificateCache = request.app.state.certificate_cache
    return authenticate_device(
        session,
        body=body,
        signature=signature,
        forwarded_certificate=forwarded,
        identities=_identities(request),
        cache=cache,
        now=now,
    )


def _answer(answer: CheckinAnswer) -> Response:
    return Response(content=answer.body, status_code=answer.status, media_type=answer.content_type, headers=_NO_STORE)


@router.put("/checkin")
async def checkin(request: Request) -> Response:
    resources = server_resources(request)
    body = await _body(request)
    identities = _identities(request)
    message = read_checkin(body)

    def work() -> CheckinAnswer:
        with request_session(resources.session_factory, method="PUT") as session:
            now = resources.clock()
            device = _authenticated(session, request, resources, body=body, now=now)
            answer = handle_checkin(
                session,
                message,
                device,
                identities=identities,
                box=resources.secret_box,
                settings=resources.settings,
                now=now,
            )
            session.commit()
            return answer

    return _answer(await run_in_threadpool(work))


@router.put("/connect")
async def connect(request: Request) -> Response:
    resources = server_resources(request)
    body = await _body(request, limit=MAX_REPORT_BYTES)
    identities = _identities(request)
    report = read_command_report(body)

    def work() -> CheckinAnswer:
        with request_session(resources.session_factory, method="PUT") as session:
            now = resources.clock()
            device = _authenticated(session, request, resources, body=body, now=now)
            answer = handle_connect(
                session,
                report,
                device,
                identities=identities,
                box=resources.secret_box,
                settings=resources.settings,
                now=now,
            )
            session.commit()
            return answer

    return _answer(await run_in_threadpool(work))
