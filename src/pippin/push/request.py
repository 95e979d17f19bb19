"""The request for a push certificate: the organisation's key pair and CSR, signed by the MDM vendor for Apple.

Apple's Push Certificates Portal (identity.apple.com) takes a ``PushCertificateRequest``: an XML plist, base64
encoded, holding the CSR (base64 DER), the vendor certificate with its chain (PEM) and the vendor key's
signature over the CSR's DER (RSA PKCS#1 v1.5, SHA-256), reference section 5, "Getting the cert". Without a
vendor certificate, Pippin hands out the plain CSR (PEM) for an outside vendor's signing service.

The key waits as *pending* until the certificate Apple issues for it is uploaded (``push/certificate.py``).
Asking again hands out the same request, made from the same key: the admin may already have given it to Apple,
and a new key would make the certificate Apple issues for it useless. ``new_key`` replaces the pending key on
purpose (the request given out before then leads nowhere). The active certificate is never touched here.
"""

from __future__ import annotations

import base64
import logging
import plistlib
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.admin.master_key import confirm_master_key
from pippin.crypto.keys import KeyGenerator, generate_private_key, seal_private_key
from pippin.crypto.secrets import SecretBox
from pippin.errors import InvalidInput
from pippin.push.schemas import PushRequestFile, RequestKind
from pippin.push.vendor import find_vendor, open_vendor_key
from pippin.store.models import PUSH_CERTIFICATE_ID, PushCertificate, PushVendorCertificate, utcnow
from pippin.store.singleton_rows import lock_or_create

logger = logging.getLogger(__name__)

#: The CSR's subject: Apple replaces it (the certificate it issues names its own subject and topic).
CSR_COMMON_NAME = "Pippin MDM push certificate"
SIGNED_REQUEST_FILENAME = "pippin-push-request.plist.b64"
CSR_FILENAME = "pippin-push.csr"


def build_csr(key: rsa.RSAPrivateKey) -> x509.CertificateSigningRequest:
    """The organisation's CSR for ``key`` (SHA-256, RSA)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CSR_COMMON_NAME)])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def build_signed_request(
    csr: x509.CertificateSigningRequest, *, vendor_key: rsa.RSAPrivateKey, chain_pem: str
) -> bytes:
    """The base64 XML plist ``PushCertificateRequest`` for ``csr``, signed with ``vendor_key`` (reference 5).

    ``chain_pem`` is the vendor certificate followed by the certificates above it, PEM.
    """
    csr_der = csr.public_bytes(serialization.Encoding.DER)
    signature = vendor_key.sign(csr_der, padding.PKCS1v15(), hashes.SHA256())
    request = {
        "PushCertRequestCSR": base64.b64encode(csr_der).decode("ascii"),
        "PushCertCertificateChain": chain_pem,
        "PushCertSignature": base64.b64encode(signature).decode("ascii"),
    }
    return base64.b64encode(plistlib.dumps(request, fmt=plistlib.FMT_XML))


def _signed(csr: x509.CertificateSigningRequest, vendor: PushVendorCertificate, box: SecretBox, now: datetime) -> bytes:
    if vendor.not_after <= now:
        raise InvalidInput(
            f"The imported MDM vendor certificate expired on {vendor.not_after:%Y-%m-%d} UTC; Apple refuses "
            "requests it signs.",
            hint="Import a renewed one with `pippin push vendor import`, or pass --unsigned for the plain CSR to "
            "have it signed elsewhere.",
        )
    return build_signed_request(
        csr, vendor_key=open_vendor_key(vendor, box), chain_pem=vendor.certificate_pem + vendor.chain_pem
    )


def create_request(
    session: Session,
    *,
    box: SecretBox,
    actor: Actor,
    generate_key: KeyGenerator | None = None,
    new_key: bool = False,
    unsigned: bool = False,
    now: datetime | None = None,
) -> PushRequestFile:
    """The file for Apple's Push Certificates Portal: the signed request when a vendor certificate is imported
    (unless ``unsigned``), else the plain CSR; from the pending key, made now if there is none (or ``new_key``).

    ``generate_key`` makes the key (the server and the CLI inject theirs). Recorded in the audit log for ``actor``.
    """
    now = now or utcnow()
    row = lock_or_create(session, PushCertificate, PUSH_CERTIFICATE_ID)
    reused = bool(row.pending_private_key_encrypted and row.pending_csr_pem) and not new_key
    if reused:
        assert row.pending_csr_pem is not None
        csr = x509.load_pem_x509_csr(row.pending_csr_pem.encode("ascii"))
    else:
        confirm_master_key(session, box)
        key = (generate_key or generate_private_key)()
        csr = build_csr(key)
        row.pending_private_key_encrypted = seal_private_key(key, box)
        row.pending_csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
        row.pending_created_at = now
    session.flush()
    vendor = find_vendor(session)
    warnings = []
    if vendor is not None and not unsigned:
        result = PushRequestFile(
            kind=RequestKind.signed_request,
            filename=SIGNED_REQUEST_FILENAME,
            media_type="application/octet-stream",
            content=_signed(csr, vendor, box, now),
            reused=reused,
        )
    else:
        if vendor is None:
            warnings.append(
                "No MDM vendor certificate is imported, so this is the plain CSR: have it signed by an MDM vendor's "
                "signing service (it returns the request file for identity.apple.com), or import your vendor "
                "certificate with `pippin push vendor import` and run `pippin push csr` again for the signed request."
            )
        assert row.pending_csr_pem is not None
        result = PushRequestFile(
            kind=RequestKind.csr,
            filename=CSR_FILENAME,
            media_type="application/pkcs10",
            content=row.pending_csr_pem.encode("ascii"),
            reused=reused,
        )
    result.warnings.extend(warnings)
    audit.record_event(
        session,
        actor=actor,
        action=AuditAction.push_request_create,
        target=row.topic,
        detail={"kind": result.kind.value, "reused": reused, "renewal": row.certificate_pem is not None},
        now=now,
    )
    logger.info("push certificate request made", extra={"fields": {"kind": result.kind.value, "reused": reused}})
    return result
