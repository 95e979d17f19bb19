"""Apple's Push Certificates Portal as a JSON API under ``/portal/push/``, plus test MDM vendor certificates.

Like the Business Manager JSON API (``portal.py``), the caller names the Apple ID it is "signed in" with
(``apple_id`` in the body or query); refusals are ``{"error", "detail"}`` with a 4xx status and change nothing.
Routes only translate HTTP into calls on ``push_certs`` and ``push_ca``, each in one transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, StrictStr

from pippin.sim import push_ca, push_certs, stored_authorities
from pippin.sim.portal import PortalRoute, Strict, sim_state
from pippin.sim.portal_errors import invalid

router = APIRouter(route_class=PortalRoute, prefix="/portal/push", tags=["push certificates"])

AppleIdQuery = Annotated[str, Query(max_length=1000, description="The Apple ID signed in to the portal.")]
#: The certificate's CN is "MDM Vendor: <name>", and X.509 caps a CN at 64 characters.
MAX_VENDOR_NAME = 52


class VendorCertificateCreate(Strict):
    vendor_name: StrictStr = Field(default="Pippin Test Vendor", max_length=1000)


class PushCertificateUpload(Strict):
    apple_id: StrictStr = Field(max_length=1000, description="The Apple ID signed in to the portal.")
    request: StrictStr = Field(description="The signed request as the vendor returned it: base64 of the XML plist.")


class VendorCertificateRead(BaseModel):
    certificate_pem: str
    private_key_pem: str = Field(description="The vendor's key, PKCS#8 PEM, unencrypted: a test key only.")
    chain_pem: str = Field(description="Vendor certificate, WWDR intermediate, root: a PushCertCertificateChain.")
    serial: str = Field(description="Lowercase hex.")
    not_after: str


class AuthoritiesRead(BaseModel):
    push_ca_pem: str = Field(description="The CA push certificates chain to; an APNs server trusts it.")
    wwdr_intermediate_pem: str
    wwdr_root_pem: str


class PushCertificateSummary(BaseModel):
    serial: str = Field(description="Lowercase hex.")
    topic: str = Field(description="com.apple.mgmt.External.<uuid>: the certificate subject's UID, the APNs topic.")
    apple_id: str
    vendor: str = Field(description="Subject of the vendor certificate that signed the request.")
    not_before: str
    not_after: str
    created_at: str
    status: str = Field(description="active, renewed (replaced by a renewal, valid until it expires) or expired.")
    renewed_from_serial: str | None


class PushCertificateRead(PushCertificateSummary):
    certificate_pem: str


class PushCertificateList(BaseModel):
    certificates: list[PushCertificateSummary]


@router.post("/vendor-certificates", status_code=201, response_model=VendorCertificateRead)
def create_vendor_certificate(body: VendorCertificateCreate, request: Request) -> dict[str, Any]:
    """A test MDM vendor certificate and its key (real vendors get theirs from Apple's developer programme).

    Dated by the wall clock: the vendor's tools and the portal's upload check judge it by real time.
    """
    name = body.vendor_name.strip()
    if not name or len(name) > MAX_VENDOR_NAME or any(ord(char) < 32 for char in name):
        raise invalid("invalid_field", f"vendor_name must be one line of 1 to {MAX_VENDOR_NAME} characters.")
    state = sim_state(request)
    with state.transaction() as session:
        authorities = push_ca.load_authorities(session, now=state.clock.now())
    vendor = push_ca.issue_vendor_certificate(authorities, vendor_name=name, now=state.clock.wall_now())
    certificate_pem = stored_authorities.certificate_pem(vendor.certificate)
    return {
        "certificate_pem": certificate_pem,
        "private_key_pem": stored_authorities.private_key_pem(vendor.private_key),
        "chain_pem": certificate_pem + "".join(stored_authorities.certificate_pem(cert) for cert in vendor.chain),
        "serial": format(vendor.certificate.serial_number, "x"),
        "not_after": vendor.certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@router.get("/authorities", response_model=AuthoritiesRead)
def read_authorities(request: Request) -> dict[str, Any]:
    """The push CA (what an APNs server trusts for push certificates) and the WWDR pair vendor chains end in."""
    state = sim_state(request)
    with state.transaction() as session:
        authorities = push_ca.load_authorities(session, now=state.clock.now())
    return {
        "push_ca_pem": stored_authorities.certificate_pem(authorities.push_root.certificate),
        "wwdr_intermediate_pem": stored_authorities.certificate_pem(authorities.wwdr_intermediate.certificate),
        "wwdr_root_pem": stored_authorities.certificate_pem(authorities.wwdr_root.certificate),
    }


@router.post("/certificates", status_code=201, response_model=PushCertificateRead)
def create_push_certificate(body: PushCertificateUpload, request: Request) -> dict[str, Any]:
    """Upload a signed request as a new push certificate: it gets a new topic."""
    state = sim_state(request)
    with state.transaction() as session:
        now = state.clock.now()
        row = push_certs.create_certificate(
            session, apple_id=body.apple_id, upload=body.request, now=now, wall_now=state.clock.wall_now()
        )
        return push_certs.certificate_view(row, now=now)


@router.get("/certificates", response_model=PushCertificateList)
def list_push_certificates(request: Request, apple_id: AppleIdQuery) -> dict[str, Any]:
    state = sim_state(request)
    with state.transaction() as session:
        now = state.clock.now()
        views = push_certs.list_certificates(session, apple_id=apple_id, now=now)
    return {"certificates": [{k: v for k, v in view.items() if k != "certificate_pem"} for view in views]}


@router.get("/certificates/{identifier}", response_model=PushCertificateRead)
def read_push_certificate(identifier: str, request: Request, apple_id: AppleIdQuery) -> dict[str, Any]:
    """One certificate by serial (hex) or topic (the topic's newest certificate)."""
    state = sim_state(request)
    with state.transaction() as session:
        row = push_certs.get_certificate(session, apple_id=apple_id, identifier=identifier)
        return push_certs.certificate_view(row, now=state.clock.now())


@router.get(
    "/certificates/{identifier}/pem",
    response_class=Response,
    responses={200: {"content": {"application/x-pem-file": {}}, "description": "The certificate, PEM."}},
)
def download_push_certificate(identifier: str, request: Request, apple_id: AppleIdQuery) -> Response:
    """The certificate as a PEM file, as "Download" gives it; pair it with the key the CSR was made from."""
    state = sim_state(request)
    with state.transaction() as session:
        row = push_certs.get_certificate(session, apple_id=apple_id, identifier=identifier)
        pem, serial = row.certificate_pem, row.serial
    return Response(
        content=pem,
        media_type="application/x-pem-file",
        headers={"Content-Disposition": f'attachment; filename="MDM_Push_Certificate_{serial}.pem"'},
    )


@router.post("/certificates/{identifier}/renew", status_code=201, response_model=PushCertificateRead)
def renew_push_certificate(identifier: str, body: PushCertificateUpload, request: Request) -> dict[str, Any]:
    """Renew with a new signed request, as the Apple ID that created the certificate: the topic stays."""
    state = sim_state(request)
    with state.transaction() as session:
        now = state.clock.now()
        row = push_certs.renew_certificate(
            session,
            apple_id=body.apple_id,
            identifier=identifier,
            upload=body.request,
            now=now,
            wall_now=state.clock.wall_now(),
        )
        return push_certs.certificate_view(row, now=now)
