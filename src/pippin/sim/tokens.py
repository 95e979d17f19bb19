"""Server-token issuance: what "Download Token" in Business Manager hands an admin (reference 1.2-1.4).

The admin uploads a PEM certificate around the MDM's RSA public key; every download mints fresh OAuth
credentials, revokes the token issued before, and ships them as ``<name>_smime.p7m``: an S/MIME entity whose
CMS EnvelopedData (AES-128-CBC content, RSA PKCS#1 v1.5 key transport to the certificate's
issuerAndSerialNumber) wraps a text/plain MIME part holding the credentials between BEGIN/END MESSAGE lines.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pippin.sim.models import SimMDMServer, SimServerToken
from pippin.sim.portal_errors import PortalError, invalid

#: A certificate PEM is ~1-3 KiB; anything far larger is not one.
MAX_PEM_BYTES = 64 * 1024
#: Every peer uses RSA-2048; smaller keys are refused as weak, larger ones capped to keep encryption cheap.
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
_OUTER_HEADERS = (
    'Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data',
    "Content-Transfer-Encoding: base64",
    'Content-Disposition: attachment; filename="smime.p7m"',
    "Content-Description: S/MIME Encrypted Message",
)


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued token: the row that the DEP API authenticates against, and the file to download."""

    token: SimServerToken
    p7m: bytes
    filename: str


def load_certificate_pem(pem: str | bytes, *, now: datetime) -> x509.Certificate:
    """Check an uploaded "public key" the way Business Manager must: one valid X.509 certificate, RSA key.

    Raises a 400 :class:`PortalError` that says what is wrong (never echoing the upload, which might be a
    private key pasted by mistake).
    """
    data = pem.encode("utf-8", "replace") if isinstance(pem, str) else pem
    if len(data) > MAX_PEM_BYTES:
        raise invalid("public_key_too_large", f"The public key file is larger than {MAX_PEM_BYTES // 1024} KiB.")
    text = data.decode("ascii", "replace")
    blocks = _PEM_BLOCK.findall(text)
    if any("PRIVATE KEY" in block for block in blocks):
        raise invalid(
            "private_key_uploaded",
            "This file holds a private key. Upload the certificate (public key) your MDM server created, "
            "and keep the private key secret.",
        )
    if blocks.count("CERTIFICATE") != 1:
        raise invalid(
            "not_a_certificate",
            "Expected one PEM-encoded X.509 certificate (-----BEGIN CERTIFICATE-----) holding the MDM server's "
            "public key.",
        )
    try:
        certificate = x509.load_pem_x509_certificate(data)
        public_key = certificate.public_key()
    except ValueError:
        raise invalid("not_a_certificate", "The certificate in this PEM file cannot be read.") from None
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise invalid("unsupported_key", "The certificate must hold an RSA public key (RSA-2048 is usual).")
    if not MIN_RSA_BITS <= public_key.key_size <= MAX_RSA_BITS:
        raise invalid(
            "unsupported_key",
            f"The certificate's RSA key has {public_key.key_size} bits; use {MIN_RSA_BITS} to {MAX_RSA_BITS}.",
        )
    if certificate.not_valid_after_utc <= now:
        raise invalid("certificate_expired", "The certificate has expired; create a new one on the MDM server.")
    if certificate.not_valid_before_utc > now:
        raise invalid("certificate_not_yet_valid", "The certificate is not valid yet; check the MDM server's clock.")
    return certificate


def normalized_pem(certificate: x509.Certificate) -> str:
    """The certificate re-encoded, so only a clean PEM (no stray text around it) is stored."""
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def issue_token(session: Session, *, server: SimMDMServer, apple_id: str, now: datetime) -> IssuedToken:
    """Mint a new token for ``server``, revoke the previous one, and build the ``.p7m`` that carries it.

    Renewal by the same Apple Account keeps the consumer key (reference 1.4: clients treat a different
    consumer key as "another server's token"); every other credential is fresh.
    """
    if server.deleted_at is not None:
        raise PortalError(409, "server_deleted", "This MDM server was deleted; create a new one to get a token.")
    issued_at = now.replace(microsecond=0)
    previous = session.scalars(
        select(SimServerToken)
        .where(SimServerToken.server_id == server.id, SimServerToken.revoked_at.is_(None))
        .order_by(SimServerToken.id.desc())
    ).first()
    consumer_key = (
        previous.consumer_key
        if previous is not None and previous.downloaded_by == apple_id
        else "CK_" + secrets.token_hex(48)
    )
    session.execute(
        update(SimServerToken)
        .where(SimServerToken.server_id == server.id, SimServerToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    token = SimServerToken(
        server_id=server.id,
        consumer_key=consumer_key,
        consumer_secret="CS_" + secrets.token_hex(20),
        access_token=_access_token(issued_at),
        access_secret="AS_" + secrets.token_hex(20),
        issued_at=issued_at,
        expires_at=_one_year_after(issued_at),
        revoked_at=None,
        downloaded_by=apple_id,
    )
    session.add(token)
    session.flush()
    certificate = x509.load_pem_x509_certificate(server.public_key_pem.encode("ascii"))
    p7m = build_token_file(token_message(token), certificate)
    filename = f"{_safe_filename(server.name)}_Token_{issued_at:%Y-%m-%dT%H-%M-%SZ}_smime.p7m"
    return IssuedToken(token=token, p7m=p7m, filename=filename)


def token_message(token: SimServerToken) -> bytes:
    """The decrypted inner layer (reference 1.3): a text/plain MIME part, CRLF, JSON on one line."""
    payload = {
        "consumer_key": token.consumer_key,
        "consumer_secret": token.consumer_secret,
        "access_token": token.access_token,
        "access_secret": token.access_secret,
        "access_token_expiry": token.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    lines = (
        "Content-Type: text/plain;charset=UTF-8",
        "Content-Transfer-Encoding: 7bit",
        "",
        "-----BEGIN MESSAGE-----",
        json.dumps(payload, separators=(",", ":")),
        "-----END MESSAGE-----",
        "",
    )
    return "\r\n".join(lines).encode("ascii")


def build_token_file(message: bytes, certificate: x509.Certificate) -> bytes:
    """Encrypt ``message`` to ``certificate`` and wrap it as Apple's ``smime.p7m`` (reference 1.2)."""
    envelope = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(message)
        .add_recipient(certificate)
        .set_content_encryption_algorithm(algorithms.AES128)
        # Binary: the message is already canonical CRLF MIME and must be encrypted byte for byte.
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    encoded = base64.b64encode(envelope).decode("ascii")
    body = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    return "\r\n".join([*_OUTER_HEADERS, "", *body, ""]).encode("ascii")


def _access_token(issued_at: datetime) -> str:
    """Shaped like a 2025 token (reference 1.3): ``AT_O<digits>O<hex>O<epoch-ms of issue>``; opaque to clients."""
    return f"AT_O{secrets.randbelow(10**10):010d}O{secrets.token_hex(20)}O{int(issued_at.timestamp() * 1000)}"


def _one_year_after(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + 1, day=28)


def _safe_filename(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")
    return cleaned[:64] or "MDM_Server"
