"""The cost of authenticating one check-in, in microseconds: Mdm-Signature verification and the identity lookup.

Signs a real TokenUpdate capture (or a TokenUpdate-shaped plist when ../shared/fixtures is absent) with device
identities issued by a CA of its own, as iOS signs (detached CMS, SHA-256, the certificate included), then
measures, per check-in:

1. asn1crypto: the straightforward way, the CMS parsed with asn1crypto, the certificate loaded and checked against
   the CA each time, then verified (the 2026 updates, section 1: about 440 µs), as the baseline;
2. pippin: ``authenticate_device`` as the check-in route calls it, with the certificate cache warm (a device's
   second and later requests): the lean DER slicer, messageDigest, the RSA verification, the cached CA verdict and
   validity, and the lookup of the issued certificate;
3. pippin, cold: the same with an empty cache (a device's first request, or one evicted);
4. one RSA-2048 verification alone: the floor, measured in the same run (the machine is usually shared, so the
   ratios are steadier than the absolute figures).

The issued certificates' records are looked up in memory (a dict behind Pippin's ``IdentityStore`` contract), so
the figures are the CPU of authentication itself; the database read of the enrollment that every check-in makes
anyway is not counted. Prints a line per stage and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import plistlib
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session

from pippin.mdm.device_auth import CertificateCache, authenticate_device
from pippin.mdm.identities import IdentityBinding, IssuedIdentity
from pippin.mdm.signature import decode_header, read_signature

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
CAPTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "nanomdm" / "TokenUpdate.1.plist"


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


class MemoryIdentities:
    """The issued certificates' records in a dict: Pippin's IdentityStore contract without a database."""

    def __init__(self, authority: x509.Certificate) -> None:
        self.authority = (authority,)
        self.records: dict[str, IssuedIdentity] = {}

    def authority_certificates(self, session: Session) -> Sequence[x509.Certificate]:
        return self.authority

    def find(self, session: Session, fingerprint: str) -> IssuedIdentity | None:
        return self.records.get(fingerprint)

    def binding(self, session: Session, identity: IssuedIdentity) -> IdentityBinding:
        return IdentityBinding()

    def bind(self, session: Session, identity: IssuedIdentity, udid: str) -> None:
        return None


def build_devices(count: int, body: bytes) -> tuple[MemoryIdentities, list[str]]:
    """``count`` identities issued by one CA, and each one's Mdm-Signature of ``body``."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Bench SCEP CA"))
        .issuer_name(_name("Bench SCEP CA"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    identities = MemoryIdentities(ca)
    device_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # one key: signing is not timed
    signatures = []
    for number in range(count):
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(f"device {number}"))
            .issuer_name(ca.subject)
            .public_key(device_key.public_key())
            .serial_number(1000 + number)
            .not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=365))
            .sign(ca_key, hashes.SHA256())
        )
        fingerprint = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
        identities.records[fingerprint] = IssuedIdentity(
            fingerprint=fingerprint, udid=f"UDID-{number}", revoked_at=None, challenge_id=None
        )
        signed = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(body)
            .add_signer(certificate, device_key, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
        )
        signatures.append(base64.b64encode(signed).decode())
    return identities, signatures


def asn1crypto_authentication(body: bytes, header: str, identities: MemoryIdentities) -> None:
    """The straightforward way: asn1crypto parses everything, then the same checks."""
    info = asn1_cms.ContentInfo.load(base64.b64decode(header))
    signer = info["content"]["signer_infos"][0]
    digest = next(a["values"][0].native for a in signer["signed_attrs"] if a["type"].native == "message_digest")
    if digest != hashlib.sha256(body).digest():
        raise ValueError("digest")
    certificate_der = info["content"]["certificates"][0].chosen.dump()
    certificate = x509.load_der_x509_certificate(certificate_der)
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(
        signer["signature"].native, signer["signed_attrs"].untag().dump(force=True), padding.PKCS1v15(), hashes.SHA256()
    )
    certificate.verify_directly_issued_by(identities.authority[0])
    if identities.find(None, hashlib.sha256(certificate_der).hexdigest()) is None:  # type: ignore[arg-type]
        raise ValueError("unknown")


def per_call(run: Callable[[int], None], calls: int) -> float:
    started = time.perf_counter()
    for number in range(calls):
        run(number)
    return (time.perf_counter() - started) / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--devices", type=int, default=200, help="distinct device identities (default 200)")
    parser.add_argument("--rounds", type=int, default=25, help="check-ins per device, warm stage (default 25)")
    arguments = parser.parse_args(argv)
    if CAPTURE.is_file():
        body, source = CAPTURE.read_bytes(), "nanomdm/TokenUpdate.1.plist"
    else:
        body = plistlib.dumps({"MessageType": "TokenUpdate", "UDID": "UDID-0", "Token": b"\x00" * 32})
        source = "synthetic TokenUpdate"
    identities, signatures = build_devices(arguments.devices, body)
    count = len(signatures)
    calls = count * arguments.rounds

    baseline = per_call(lambda n: asn1crypto_authentication(body, signatures[n % count], identities), calls)
    print(f"asn1crypto: {baseline:8.1f} µs per check-in (the CMS parsed by asn1crypto)", flush=True)

    def pippin(cache: CertificateCache) -> Callable[[int], None]:
        def run(number: int) -> None:
            authenticate_device(
                None,  # type: ignore[arg-type]  # the in-memory store needs no session
                body=body,
                signature=signatures[number % count],
                forwarded_certificate=None,
                identities=identities,
                cache=cache,
                now=NOW,
            )

        return run

    warm_cache = CertificateCache()
    pippin(warm_cache)(0)
    for number in range(count):
        pippin(warm_cache)(number)
    warm = per_call(pippin(warm_cache), calls)
    print(f"pippin:     {warm:8.1f} µs per check-in (certificate cache warm)", flush=True)
    cold = min(per_call(pippin(CertificateCache()), count) for _ in range(3))
    print(f"pippin:     {cold:8.1f} µs per check-in (first request of each device, cache cold)", flush=True)
    # The floor no parser removes: one RSA-2048 verification, measured in the same run for the ratio.
    parts = read_signature(decode_header(signatures[0]))
    key = warm_cache.get(parts.certificates[0]).public_key
    assert isinstance(key, rsa.RSAPublicKey)
    floor = per_call(
        lambda _n: key.verify(parts.signature, parts.signed_attributes, padding.PKCS1v15(), hashes.SHA256()), calls
    )
    print(f"rsa verify: {floor:8.1f} µs (the signature check alone, the floor)", flush=True)
    figures = {
        "body": source,
        "devices": count,
        "check_ins": calls,
        "asn1crypto_us": round(baseline, 1),
        "pippin_warm_us": round(warm, 1),
        "pippin_cold_us": round(cold, 1),
        "rsa_verify_us": round(floor, 1),
        "speedup": round(baseline / warm, 1),
        "target_us": 100,
    }
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
