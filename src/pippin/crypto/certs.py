"""X.509 certificates: the self-signed certificate an admin uploads to Apple, and PEM/DER conversions.

Apple uses the certificate only as the public key to encrypt the DEP server token to (reference section 1.1);
nothing verifies a chain, so self-signed is what every peer does.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pippin.errors import InvalidInput

#: Apple needs the certificate valid only when the admin uploads it, but every later "Download Token" for that
#: MDM server (the yearly renewal) is encrypted to the same certificate. Two years keeps it valid through the
#: first renewal in case anything checks its dates then; nothing trusts it beyond that, so a longer life costs
#: nothing, while a one-day certificate (nanodep's default) invites "why is my key expired" questions.
DEP_CERTIFICATE_VALIDITY = timedelta(days=730)
#: Tolerates a clock on Apple's side (or the admin's) a few minutes behind ours.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=10)


def build_self_signed_certificate(
    key: rsa.RSAPrivateKey,
    *,
    common_name: str,
    now: datetime,
    valid_for: timedelta = DEP_CERTIFICATE_VALIDITY,
) -> x509.Certificate:
    """A self-signed, non-CA certificate for ``key``, fit for encrypting a DEP token to.

    The serial is random, so two key pairs for the same token name (a current and a pending one) never share
    an issuer-and-serial, which is how a CMS recipient is matched to its key.
    """
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(int.from_bytes(secrets.token_bytes(19), "big") | 1)
        .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def certificate_to_pem(certificate: x509.Certificate) -> str:
    """The certificate as PEM text, the format Apple's portal accepts."""
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificate_to_der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def load_certificate_pem(pem: str | bytes) -> x509.Certificate:
    """Read one PEM certificate; anything else is invalid input."""
    data = pem.encode("ascii", errors="replace") if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise InvalidInput(
            "This is not a PEM certificate.",
            hint="Pass the text between and including the "
            "-----BEGIN CERTIFICATE----- and -----END CERTIFICATE----- lines.",
        ) from exc


def load_certificate_der(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise InvalidInput("This is not a DER certificate.") from exc


def public_keys_match(certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> bool:
    """Whether ``certificate`` holds the public half of ``key``."""
    return certificate.public_key() == key.public_key()
