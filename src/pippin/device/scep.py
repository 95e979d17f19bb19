"""``/mdm/scep``: the SCEP endpoint a device's enrollment profile names (RFC 8894; reference section 6).

``?operation=GetCACaps`` and ``GetCACert`` answer what the CA offers and its certificate; ``PKIOperation`` takes a
PKIMessage as raw DER in a POST body or base64 in GET's ``message=``, and answers a CertRep
(``application/x-pki-message``). The route only translates HTTP: the body bounded to :data:`MAX_MESSAGE_BYTES`,
the base64 undone, the service called in one write transaction (even for GET, which issues certificates too).
A message over the bound is refused with 413 (as the device sub-app refuses any large body) and one Pippin cannot
read with 400, in plain text (``device/errors.py``); one it can read but not grant gets a CertRep FAILURE with
200, as RFC 8894 has it.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from pippin.errors import InvalidInput
from pippin.pki import scep as scep_service
from pippin.pki.authority import authority_certificate_der
from pippin.server.deps import server_resources
from pippin.server.errors import RequestTooLarge
from pippin.server.resources import ServerResources
from pippin.store.db import request_session, transaction

#: A PKIMessage is a CSR, two certificates and their wrapping: 3-8 KiB. 64 KiB leaves room for any real one.
MAX_MESSAGE_BYTES = 64 * 1024
#: The base64 of MAX_MESSAGE_BYTES, with room for the line breaks some clients put in.
_MAX_QUERY_MESSAGE = MAX_MESSAGE_BYTES * 4 // 3 + 4096
_NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter()


class UnknownSCEPOperation(InvalidInput):
    code = "unknown_scep_operation"


async def _read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_MESSAGE_BYTES:
            raise RequestTooLarge(f"The SCEP message is larger than {MAX_MESSAGE_BYTES} bytes.")
    return bytes(body)


def query_message(value: str | None) -> bytes:
    """GET's ``message=``: base64, URL-escaped; a ``+`` a client left unescaped arrives as a space."""
    if not value:
        raise InvalidInput("PKIOperation by GET needs the message= parameter.")
    if len(value) > _MAX_QUERY_MESSAGE:
        raise RequestTooLarge(f"The SCEP message is larger than {MAX_MESSAGE_BYTES} bytes.")
    compact = "".join(value.replace(" ", "+").split())
    try:
        decoded = base64.b64decode(compact.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise InvalidInput("The message= parameter is not base64.") from None
    if len(decoded) > MAX_MESSAGE_BYTES:
        raise RequestTooLarge(f"The SCEP message is larger than {MAX_MESSAGE_BYTES} bytes.")
    return decoded


def _ca_certificate(resources: ServerResources) -> bytes:
    # Every enrollment asks; a read answers once the CA exists, so SQLite's one write lock is not taken for it.
    with request_session(resources.session_factory, method="GET") as session:
        found = authority_certificate_der(session)
    if found is not None:
        return found
    with transaction(resources.session_factory) as session:
        return scep_service.ca_certificate(
            session, box=resources.secret_box, generate_key=resources.generate_key, now=resources.clock()
        )


def _pki_operation(resources: ServerResources, message: bytes) -> bytes:
    with transaction(resources.session_factory) as session:
        answer = scep_service.answer_pki_operation(
            session,
            message,
            box=resources.secret_box,
            generate_key=resources.generate_key,
            now=resources.clock(),
            certificate_days=resources.settings.scep_certificate_days,
        )
    return answer.message


@router.api_route("/scep", methods=["GET", "POST"], include_in_schema=False)
async def scep(request: Request) -> Response:
    resources = server_resources(request)
    operation = request.query_params.get("operation")
    if operation == "GetCACaps":
        return Response(scep_service.ca_capabilities(), media_type="text/plain", headers=_NO_STORE)
    if operation == "GetCACert":
        der = await run_in_threadpool(_ca_certificate, resources)
        return Response(der, media_type="application/x-x509-ca-cert")
    if operation == "PKIOperation":
        if request.method == "POST":
            message = await _read_body(request)
        else:
            message = query_message(request.query_params.get("message"))
        if not message:
            raise InvalidInput("The PKIOperation carries no message.")
        reply = await run_in_threadpool(_pki_operation, resources, message)
        return Response(reply, media_type="application/x-pki-message", headers=_NO_STORE)
    raise UnknownSCEPOperation("Unknown SCEP operation; this server answers GetCACaps, GetCACert and PKIOperation.")
