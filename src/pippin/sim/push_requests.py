"""Reading a push certificate request the way Apple's Push Certificates Portal does (reference 5, "Getting the cert").

The upload is the base64 of an XML plist ``PushCertificateRequest``: ``PushCertRequestCSR`` (base64 DER CSR),
``PushCertCertificateChain`` (PEM: MDM vendor certificate, WWDR intermediate, Apple root) and ``PushCertSignature``
(base64 RSA PKCS#1 v1.5 SHA-256 signature by the vendor's key over the CSR's DER). :func:`verify_request` checks
every layer in that order and raises a 4xx :class:`PortalError` naming the first problem, never echoing the upload.
Binary plists are refused (cyclic-reference bombs; reference updates item 17), and so are XML entity declarations.
"""

from __future__ import annotations

import base64
import binascii
import plistlib
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pippin.sim.portal_errors import PortalError, invalid
from pippin.sim.push_ca import Authorities, has_mdm_csr_marker

#: A real request is 5-8 KiB of base64; 64 KiB leaves room and keeps hostile uploads cheap to refuse.
MAX_REQUEST_BYTES = 64 * 1024
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 4096
#: Vendor certificate, intermediate, root; a few more are tolerated, not hundreds.
MAX_CHAIN_CERTIFICATES = 5
_WHITESPACE = re.compile(rb"\s+")
_PLIST_START = (b"<?xml", b"<!DOCTYPE plist", b"<plist")
_KEYS = ("PushCertRequestCSR", "PushCertCertificateChain", "PushCertSignature")
_UPLOAD_AGAIN = "Upload the file your MDM vendor signed (the base64-encoded PushCertificateRequest) unchanged."


@dataclass(frozen=True)
class VerifiedRequest:
    """A request whose every layer checked out: the CSR to certify and the vendor who signed it."""

    csr: x509.CertificateSigningRequest
    public_key: rsa.RSAPublicKey
    vendor: x509.Certificate


def verify_request(upload: str | bytes, *, authorities: Authorities, now: datetime) -> VerifiedRequest:
    """Parse and check an uploaded request; the first problem found is raised as a :class:`PortalError`."""
    data = upload.encode("utf-8", "replace") if isinstance(upload, str) else upload
    if len(data) > MAX_REQUEST_BYTES:
        raise PortalError(
            413, "request_too_large", f"The request is larger than {MAX_REQUEST_BYTES // 1024} KiB. {_UPLOAD_AGAIN}"
        )
    fields = _read_plist(_decode_outer(data))
    csr_der = _base64_field(fields, "PushCertRequestCSR")
    signature = _base64_field(fields, "PushCertSignature")
    csr, public_key = _load_csr(csr_der)
    vendor = _check_chain(fields["PushCertCertificateChain"], authorities=authorities, now=now)
    vendor_key = vendor.public_key()
    if not isinstance(vendor_key, rsa.RSAPublicKey):
        raise invalid("not_mdm_vendor", "The vendor certificate does not hold an RSA key; it is not an MDM vendor's.")
    try:
        vendor_key.verify(signature, csr_der, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise invalid(
            "bad_signature",
            "PushCertSignature does not verify with the vendor certificate over this CSR: the CSR or the signature "
            "was changed after the vendor signed it. Ask your MDM vendor to sign the CSR again (RSA PKCS#1 v1.5, "
            "SHA-256, over the CSR's DER).",
        ) from None
    return VerifiedRequest(csr=csr, public_key=public_key, vendor=vendor)


def _decode_outer(data: bytes) -> bytes:
    """The plist inside the upload's base64, refusing a bare CSR or plist with a message saying what it is."""
    stripped = data.strip()
    if stripped.startswith(b"bplist"):
        raise _binary_plist()
    _refuse_pem(stripped)
    if stripped.startswith(_PLIST_START):
        raise invalid("not_base64", f"This is a plist, but the portal takes it base64-encoded. {_UPLOAD_AGAIN}")
    try:
        decoded = base64.b64decode(_WHITESPACE.sub(b"", stripped), validate=True)
    except (binascii.Error, ValueError):
        raise invalid("not_base64", f"The file is not base64 text. {_UPLOAD_AGAIN}") from None
    if not decoded:
        raise invalid("empty_request", f"The request is empty. {_UPLOAD_AGAIN}")
    if decoded.startswith(b"bplist"):
        raise _binary_plist()
    _refuse_pem(decoded)
    if _is_der_csr(decoded):
        raise invalid(
            "bare_csr",
            "This is a bare CSR, not a signed push certificate request. Send your CSR to your MDM vendor, who signs "
            "it and returns the request to upload here.",
        )
    return decoded


def _read_plist(data: bytes) -> dict[str, str]:
    body = data.lstrip(b"\xef\xbb\xbf").lstrip()
    if not body.startswith(_PLIST_START):
        raise invalid("not_a_plist", f"The decoded request is not an XML property list. {_UPLOAD_AGAIN}")
    if b"<!ENTITY" in body:
        raise invalid("not_a_plist", "XML entity declarations are not allowed in a push certificate request.")
    try:
        value = plistlib.loads(body, fmt=plistlib.FMT_XML)
    # plistlib lets hostile XML escape as whatever its internals hit (AttributeError on a bad <date>,
    # LookupError on an unknown encoding, ExpatError, ValueError...): every one of them means "not a plist".
    except Exception:
        raise invalid("not_a_plist", f"The request's property list cannot be read. {_UPLOAD_AGAIN}") from None
    if not isinstance(value, dict):
        raise invalid("not_a_request", "The property list is not a dictionary; it is not a PushCertificateRequest.")
    missing = [key for key in _KEYS if key not in value]
    if missing:
        raise invalid(
            "not_a_request", f"The property list has no {', '.join(missing)}; it is not a PushCertificateRequest."
        )
    wrong = [key for key in _KEYS if not isinstance(value[key], str)]
    if wrong:
        raise invalid("not_a_request", f"{', '.join(wrong)} must be strings in a PushCertificateRequest.")
    return {key: value[key] for key in _KEYS}


def _base64_field(fields: dict[str, str], key: str) -> bytes:
    try:
        decoded = base64.b64decode(_WHITESPACE.sub(b"", fields[key].encode("ascii")), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise invalid("not_a_request", f"{key} is not base64 data. {_UPLOAD_AGAIN}")
    return decoded


def _load_csr(der: bytes) -> tuple[x509.CertificateSigningRequest, rsa.RSAPublicKey]:
    try:
        csr = x509.load_der_x509_csr(der)
        public_key = csr.public_key()
        self_signed = csr.is_signature_valid
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise invalid(
            "bad_csr", "PushCertRequestCSR is not a readable certificate signing request (DER). " + _UPLOAD_AGAIN
        ) from None
    if not self_signed:
        raise invalid(
            "bad_csr",
            "The CSR's own signature does not match its content: it was changed after it was made. "
            "Make a new CSR and have it signed again.",
        )
    if not isinstance(public_key, rsa.RSAPublicKey) or not MIN_RSA_BITS <= public_key.key_size <= MAX_RSA_BITS:
        raise invalid(
            "unsupported_key", f"The CSR must be for an RSA key of {MIN_RSA_BITS} to {MAX_RSA_BITS} bits (RSA-2048)."
        )
    return csr, public_key


def _check_chain(chain_pem: str, *, authorities: Authorities, now: datetime) -> x509.Certificate:
    """The vendor certificate at the head of ``chain_pem``, once the chain is Apple's and the vendor's is valid."""
    if chain_pem.count("-----BEGIN CERTIFICATE-----") > MAX_CHAIN_CERTIFICATES:
        raise invalid("bad_chain", f"PushCertCertificateChain holds more than {MAX_CHAIN_CERTIFICATES} certificates.")
    try:
        certificates = x509.load_pem_x509_certificates(chain_pem.encode("utf-8"))
    except (ValueError, TypeError, UnicodeEncodeError):
        detail = "PushCertCertificateChain is not a list of PEM certificates. " + _UPLOAD_AGAIN
        raise invalid("bad_chain", detail) from None
    vendor, rest = certificates[0], certificates[1:]
    apple = {cert.fingerprint(hashes.SHA256()) for cert in authorities.wwdr_chain()}
    foreign = "The certificate chain is not Apple's: the request must be signed with an MDM vendor certificate "
    foreign += "from Apple's developer programme, followed by Apple's WWDR intermediate and root."
    given = {cert.fingerprint(hashes.SHA256()) for cert in rest}
    if given - apple:
        raise invalid("foreign_chain", foreign)
    if apple - given:
        raise invalid(
            "incomplete_chain",
            "PushCertCertificateChain must hold the vendor certificate, then Apple's WWDR intermediate and root.",
        )
    intermediate = authorities.wwdr_intermediate.certificate
    # Past this check the vendor certificate is one the simulator signed, so reading it further cannot fail.
    try:
        vendor.verify_directly_issued_by(intermediate)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        raise invalid("foreign_chain", foreign) from None
    if not has_mdm_csr_marker(vendor):
        raise invalid(
            "not_mdm_vendor",
            "The vendor certificate is not enabled for MDM CSR signing; sign with your MDM vendor certificate.",
        )
    if vendor.not_valid_after_utc <= now:
        raise invalid(
            "vendor_certificate_expired",
            f"The MDM vendor certificate expired on {vendor.not_valid_after_utc:%Y-%m-%d}; the vendor must renew it "
            "and sign the CSR again.",
        )
    if vendor.not_valid_before_utc > now:
        raise invalid("vendor_certificate_not_yet_valid", "The MDM vendor certificate is not valid yet.")
    return vendor


def _refuse_pem(data: bytes) -> None:
    head = data.lstrip()[:100]
    if not head.startswith(b"-----BEGIN"):
        return
    if b"CERTIFICATE REQUEST" in head:
        raise invalid(
            "bare_csr",
            "This is a bare CSR, not a signed push certificate request. Send your CSR to your MDM vendor, who signs "
            "it and returns the request to upload here.",
        )
    raise invalid("not_a_request", f"This is a PEM file, not a signed push certificate request. {_UPLOAD_AGAIN}")


def _is_der_csr(data: bytes) -> bool:
    if not data.startswith(b"\x30"):
        return False
    try:
        x509.load_der_x509_csr(data)
    except ValueError:
        return False
    return True


def _binary_plist() -> PortalError:
    return invalid(
        "binary_plist", f"Binary property lists are not accepted; the request must be an XML plist. {_UPLOAD_AGAIN}"
    )
