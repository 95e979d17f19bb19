"""The MDM vendor certificate: imported with its key, it signs the organisation's push certificate request.

Apple issues an MDM vendor certificate (``mdm.cer``) to a developer account with "MDM CSR" enabled; the vendor
signs each customer's CSR with its key, and Apple's Push Certificates Portal checks that signature against the
chain in the request (reference section 5, "Getting the cert (vendor-signed CSR)"). An organisation that is its
own vendor imports that certificate here; one without a vendor certificate hands its plain CSR to an outside
vendor's signing service instead (:mod:`pippin.push.request`).
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.admin.master_key import confirm_master_key
from pippin.crypto.certs import CLOCK_SKEW_ALLOWANCE, certificate_to_pem, public_keys_match
from pippin.crypto.keys import open_private_key, seal_private_key
from pippin.crypto.pem import fingerprint, load_certificates, load_private_key
from pippin.crypto.secrets import SecretBox
from pippin.dep.token import WARNING_DAYS, expiry_level
from pippin.errors import InvalidInput
from pippin.push.schemas import VendorCertificateRead, VendorImportResult
from pippin.store.models import PUSH_VENDOR_CERTIFICATE_ID, PushVendorCertificate, utcnow
from pippin.store.singleton_rows import lock_or_create

logger = logging.getLogger(__name__)

#: A certificate with its chain is a few kilobytes; this bounds what is read from a file or an upload.
MAX_CERTIFICATE_FILE_BYTES = 100_000
_CERTIFICATE_HINT = (
    "Pass the MDM vendor certificate Apple issued to your developer account (mdm.cer, PEM or DER) with --certificate."
)
_KEY_HINT = "Pass the private key of the CSR you sent Apple for the vendor certificate with --key (PEM or DER)."
_CHAIN_HINT = "Pass Apple's intermediate (WWDR) and root certificates, PEM, with --chain or after it in the file."


def _bounded(data: bytes, what: str) -> bytes:
    if len(data) > MAX_CERTIFICATE_FILE_BYTES:
        raise InvalidInput(
            f"{what} is larger than {MAX_CERTIFICATE_FILE_BYTES:,} bytes; a certificate or key is a few kilobytes.",
            hint="Check that you chose the right file.",
        )
    return data


def _order_chain(vendor: x509.Certificate, others: list[x509.Certificate]) -> list[x509.Certificate]:
    """``others`` from the vendor certificate's issuer upwards, each issuing the one before; refused otherwise."""
    chain: list[x509.Certificate] = []
    remaining = list(others)
    current = vendor
    while remaining:
        issuer = next((c for c in remaining if c.subject == current.issuer and c is not current), None)
        if issuer is None:
            break
        try:
            current.verify_directly_issued_by(issuer)
        except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError) as exc:
            raise InvalidInput(
                f"The chain certificate {issuer.subject.rfc4514_string()!r} has the issuer's name but did not sign "
                f"{current.subject.rfc4514_string()!r}.",
                hint=_CHAIN_HINT,
            ) from exc
        chain.append(issuer)
        remaining.remove(issuer)
        current = issuer
        if issuer.subject == issuer.issuer:
            break
    if remaining:
        raise InvalidInput(
            f"{len(remaining)} certificate(s) given with the vendor certificate are not part of its chain "
            f"(e.g. {remaining[0].subject.rfc4514_string()!r}).",
            hint=_CHAIN_HINT,
        )
    return chain


def _pick_vendor(certificates: list[x509.Certificate], key: rsa.RSAPrivateKey) -> x509.Certificate:
    for certificate in certificates:
        if public_keys_match(certificate, key):
            return certificate
    raise InvalidInput(
        "The key does not belong to the vendor certificate: none of the certificates given holds its public half.",
        hint="Pass the key of the CSR you sent Apple for this vendor certificate, or the certificate of this key.",
    )


def to_vendor_read(vendor: PushVendorCertificate, *, now: datetime) -> VendorCertificateRead:
    return VendorCertificateRead(
        subject=vendor.subject,
        not_after=vendor.not_after,
        days_left=math.floor((vendor.not_after - now) / timedelta(days=1)),
        expiry_level=expiry_level(vendor.not_after, now=now),
        fingerprint=vendor.fingerprint,
        chain_length=vendor.chain_pem.count("-----BEGIN CERTIFICATE-----"),
        imported_at=vendor.imported_at,
    )


def import_vendor_certificate(
    session: Session,
    *,
    certificate: bytes,
    key: bytes,
    chain: bytes | None = None,
    box: SecretBox,
    actor: Actor,
    now: datetime | None = None,
) -> VendorImportResult:
    """Check and store the vendor certificate, its chain and its key (sealed), replacing one imported before.

    ``certificate`` may hold the chain after the vendor certificate (PEM), or ``chain`` holds it. Refused whole,
    with nothing stored, when the key does not match, the certificate expired or the chain does not link up.
    Recorded in the audit log for ``actor``.
    """
    now = now or utcnow()
    certificates = load_certificates(
        _bounded(certificate, "The certificate file"), expected="the MDM vendor certificate", hint=_CERTIFICATE_HINT
    )
    private_key = load_private_key(_bounded(key, "The key file"), what="The vendor key", hint=_KEY_HINT)
    if chain is not None:
        certificates += load_certificates(
            _bounded(chain, "The chain file"), expected="the vendor certificate's chain", hint=_CHAIN_HINT
        )
    vendor = _pick_vendor(certificates, private_key)
    ordered = _order_chain(vendor, [c for c in certificates if c is not vendor])
    not_after = vendor.not_valid_after_utc
    if not_after <= now:
        raise InvalidInput(
            f"This vendor certificate expired on {not_after:%Y-%m-%d} UTC.",
            hint="Make a new one in your Apple developer account (Certificates, MDM CSR) and import that.",
        )
    if vendor.not_valid_before_utc > now + CLOCK_SKEW_ALLOWANCE:
        raise InvalidInput(
            f"This vendor certificate is valid only from {vendor.not_valid_before_utc:%Y-%m-%d %H:%M} UTC.",
            hint="Check this machine's clock, or import it once it is valid.",
        )
    warnings = []
    days_left = math.floor((not_after - now) / timedelta(days=1))
    if days_left < WARNING_DAYS:
        warnings.append(
            f"The vendor certificate expires in {days_left} days ({not_after:%Y-%m-%d}); requests signed after "
            "that are refused by Apple. Renew it in your Apple developer account soon."
        )
    if not ordered:
        warnings.append(
            "No chain was given: Apple's portal expects the vendor certificate followed by Apple's WWDR "
            "intermediate and root certificates. " + _CHAIN_HINT
        )
    confirm_master_key(session, box)
    values = {
        "private_key_encrypted": seal_private_key(private_key, box),
        "certificate_pem": certificate_to_pem(vendor),
        "chain_pem": "".join(certificate_to_pem(c) for c in ordered),
        "subject": vendor.subject.rfc4514_string()[:512],
        "not_after": not_after,
        "fingerprint": fingerprint(vendor),
        "imported_at": now,
    }
    replaced = find_vendor(session) is not None
    row = lock_or_create(session, PushVendorCertificate, PUSH_VENDOR_CERTIFICATE_ID, **values)
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()
    audit.record_event(
        session,
        actor=actor,
        action=AuditAction.push_vendor_import,
        target=row.subject,
        detail={"fingerprint": row.fingerprint, "replaced": replaced, "chain": len(ordered)},
        now=now,
    )
    logger.info("MDM vendor certificate imported", extra={"fields": {"fingerprint": row.fingerprint}})
    return VendorImportResult(vendor=to_vendor_read(row, now=now), warnings=warnings)


def find_vendor(session: Session) -> PushVendorCertificate | None:
    return session.get(PushVendorCertificate, PUSH_VENDOR_CERTIFICATE_ID)


def open_vendor_key(vendor: PushVendorCertificate, box: SecretBox) -> rsa.RSAPrivateKey:
    return open_private_key(vendor.private_key_encrypted, box)
