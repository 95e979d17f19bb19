"""The simulated APNs server's TLS: its own CA, kept in the data directory, and the server certificate it signs.

Apple's provider API is HTTPS with a certificate from a public CA; the simulator cannot have one, so it makes a
CA of its own on first use (``apns-tls-ca.pem``, its key beside it with mode 0600) and a client trusts that file
instead (``GET /apns/ca.pem`` on the simulator's HTTP app serves it). The server certificate is issued anew at
every start, for loopback and the host the server listens on, so a changed ``--host`` never needs a cleanup.

The TLS context asks every client for a certificate (Apple's CertificateRequest) and checks it against the
trusted push CAs inside the handshake, so an expired or untrusted push certificate fails the handshake, as at
Apple (reference section 5: "An expired push cert shows up as a TLS handshake error"). A client that sends no
certificate completes the handshake: Apple then answers each request ``403 MissingProviderToken``.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT_FILE = "apns-tls-ca.pem"
CA_KEY_FILE = "apns-tls-ca.key"
SERVER_CERT_FILE = "apns-tls-server.pem"
SERVER_KEY_FILE = "apns-tls-server.key"
#: What the server certificate always names, beside the host it listens on.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

_create_lock = threading.Lock()


@dataclass(frozen=True)
class ServerTLS:
    """The files a TLS server context loads: the CA clients trust, and the server's own chain and key."""

    ca_path: Path
    cert_path: Path
    key_path: Path


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only, whole or not at all (a rename at the end)."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pippin Apple simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _create_ca(data_dir: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    name = _name("Pippin simulator APNs TLS CA")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(data_dir / CA_KEY_FILE, _pem_key(key))
    _write_private(data_dir / CA_CERT_FILE, certificate.public_bytes(serialization.Encoding.PEM))
    os.chmod(data_dir / CA_CERT_FILE, 0o644)


def ensure_ca(data_dir: Path) -> Path:
    """The path of the simulator's TLS CA certificate, created on first use and kept across restarts."""
    path = data_dir / CA_CERT_FILE
    with _create_lock:
        if not path.exists() or not (data_dir / CA_KEY_FILE).exists():
            _create_ca(data_dir)
    return path


def ca_pem(data_dir: Path) -> bytes:
    return ensure_ca(data_dir).read_bytes()


def _subject_alternative_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys([*LOOPBACK_NAMES, *hosts]):
        if not host or host in ("0.0.0.0", "::"):  # noqa: S104 - a wildcard address names no host
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def issue_server_certificate(data_dir: Path, hosts: Sequence[str] = ()) -> ServerTLS:
    """A new server certificate for loopback and ``hosts``, signed by the simulator's TLS CA."""
    ca_path = ensure_ca(data_dir)
    ca_certificate = x509.load_pem_x509_certificate(ca_path.read_bytes())
    ca_key = serialization.load_pem_private_key((data_dir / CA_KEY_FILE).read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{data_dir / CA_KEY_FILE} is not the simulator's EC key; delete both CA files to renew")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name("api.push.apple.com (simulated)"))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(_subject_alternative_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = data_dir / SERVER_CERT_FILE, data_dir / SERVER_KEY_FILE
    with _create_lock:
        _write_private(key_path, _pem_key(key))
        _write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return ServerTLS(ca_path=ca_path, cert_path=cert_path, key_path=key_path)


def server_context(tls: ServerTLS, trusted_push_cas: Sequence[x509.Certificate]) -> ssl.SSLContext:
    """A server context that offers only HTTP/2 and verifies client certificates against ``trusted_push_cas``.

    ``CERT_OPTIONAL``: a client with no certificate is let in (and refused per request, as Apple does); one with
    a certificate that does not chain to a trusted push CA, or is outside its validity, fails the handshake.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_path, tls.key_path)
    context.set_alpn_protocols(["h2"])
    context.verify_mode = ssl.CERT_OPTIONAL
    if trusted_push_cas:
        context.load_verify_locations(
            cadata="".join(ca.public_bytes(serialization.Encoding.PEM).decode("ascii") for ca in trusted_push_cas)
        )
    return context
