"""``/api/v1/push``: the organisation's MDM push certificate, the REST face of ``pippin.push``.

Each route parses, calls one service function (the one the CLI calls) and returns its schema; statuses for errors
come from ``api/errors.py``. Private keys never leave the service layer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile

from pippin.api.audit import APIChanger
from pippin.api.deps import AdminRoute
from pippin.api.errors import ErrorRead
from pippin.push import certificate as certificate_service
from pippin.push import request as request_service
from pippin.push import status as status_service
from pippin.push import vendor as vendor_service
from pippin.push.schemas import PushCertificateRead, PushCertificateUploadResult, RequestKind, VendorImportResult
from pippin.server.deps import DBSession, Resources
from pippin.server.errors import RequestTooLarge
from pippin.text import Line

router = APIRouter(prefix="/push", tags=["push certificate"], route_class=AdminRoute)

_BAD_FILE: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorRead, "description": "A file is not what was expected (the message says what it is)."}
}
#: The header naming what the request download is (one of :class:`RequestKind`).
KIND_HEADER = "X-Pippin-Request-Kind"


def _read(upload: UploadFile, *, limit: int, what: str) -> bytes:
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise RequestTooLarge(
            f"The {what} is larger than {limit:,} bytes; a certificate or key is a few kilobytes.",
            hint="Check that you chose the right file.",
        )
    return data


@router.get("/certificate", response_model=PushCertificateRead)
def read_push_certificate(session: DBSession, resources: Resources) -> PushCertificateRead:
    """The push certificate: status, topic, expiry (30 and 7 days warnings), the Apple ID to renew with, the
    vendor certificate, and what to do next."""
    return status_service.read_status(session, now=resources.clock())


@router.post(
    "/certificate/request",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {}, "application/pkcs10": {}},
            "description": "The signed request for identity.apple.com (base64 XML plist, with a vendor certificate) "
            f"or the plain CSR (PEM); the `{KIND_HEADER}` header says which "
            f"({', '.join(kind.value for kind in RequestKind)}).",
        },
        400: {"model": ErrorRead, "description": "The imported vendor certificate expired."},
    },
)
def create_push_request(
    session: DBSession,
    resources: Resources,
    actor: APIChanger,
    new_key: Annotated[
        bool, Query(description="Replace the waiting request's key; a request given to Apple before leads nowhere.")
    ] = False,
    unsigned: Annotated[bool, Query(description="The plain CSR even though a vendor certificate is imported.")] = False,
) -> Response:
    """Make (or hand out again) the organisation's request for a push certificate.

    The same request (same key) comes back until the certificate for it is uploaded, unless ``new_key``.
    """
    made = request_service.create_request(
        session,
        box=resources.secret_box,
        actor=actor,
        generate_key=resources.generate_key,
        new_key=new_key,
        unsigned=unsigned,
        now=resources.clock(),
    )
    return Response(
        made.content,
        media_type=made.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{made.filename}"',
            KIND_HEADER: made.kind.value,
        },
    )


@router.put("/vendor", response_model=VendorImportResult, responses=_BAD_FILE)
def import_push_vendor(
    certificate: Annotated[
        UploadFile, File(description="The MDM vendor certificate (PEM or DER), optionally followed by its chain.")
    ],
    key: Annotated[UploadFile, File(description="The vendor certificate's private key (PEM or DER, unencrypted).")],
    session: DBSession,
    resources: Resources,
    actor: APIChanger,
    chain: Annotated[UploadFile | None, File(description="Apple's intermediate and root certificates (PEM).")] = None,
) -> VendorImportResult:
    """Import the MDM vendor certificate and key that sign the push certificate request (the key is sealed)."""
    limit = vendor_service.MAX_CERTIFICATE_FILE_BYTES
    return vendor_service.import_vendor_certificate(
        session,
        certificate=_read(certificate, limit=limit, what="certificate file"),
        key=_read(key, limit=limit, what="key file"),
        chain=None if chain is None else _read(chain, limit=limit, what="chain file"),
        box=resources.secret_box,
        actor=actor,
        now=resources.clock(),
    )


@router.put(
    "/certificate",
    response_model=PushCertificateUploadResult,
    responses={
        **_BAD_FILE,
        409: {
            "model": ErrorRead,
            "description": "No request was made, or the certificate's topic is not the active one's (a renewal "
            "must keep it; `replace_topic` overrides, orphaning every enrolled device).",
        },
    },
)
def upload_push_certificate(
    certificate: Annotated[UploadFile, File(description="The push certificate from identity.apple.com.")],
    apple_id: Annotated[Line, Form(max_length=320, description="The Apple ID that created the certificate.")],
    session: DBSession,
    resources: Resources,
    actor: APIChanger,
    replace_topic: Annotated[
        bool, Form(description="Accept another topic than the active one: every enrolled device must enroll again.")
    ] = False,
) -> PushCertificateUploadResult:
    """Upload the push certificate Apple issued for the request; a renewal keeps the topic."""
    return certificate_service.upload_certificate(
        session,
        data=_read(certificate, limit=certificate_service.MAX_CERTIFICATE_FILE_BYTES, what="certificate file"),
        apple_id=apple_id,
        box=resources.secret_box,
        actor=actor,
        replace_topic=replace_topic,
        now=resources.clock(),
    )
