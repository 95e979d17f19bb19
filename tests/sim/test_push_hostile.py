"""Refused push certificate requests: each gets a 4xx JSON error saying what is wrong, and nothing is stored."""

from __future__ import annotations

import base64
import functools
import plistlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from pippin.sim.models import SimCertificateAuthority, SimPushCertificate
from pippin.sim.push_ca import MDM_CSR_SIGNING_OID, load_authorities
from tests.sim.push_client import (
    Vendor,
    create_push_certificate,
    csr_der,
    customer_key,
    get_vendor,
    renew,
    request_plist,
    sign,
    signed_request,
    upload,
)
from tests.simulator import RunningSimulator


@pytest.fixture
def vendor(apple: RunningSimulator) -> Vendor:
    return get_vendor(apple.portal)


@pytest.fixture
def unchanged(apple: RunningSimulator) -> Iterator[None]:
    """Fails the test if the portal stored anything (a certificate, a renewal, an authority)."""
    get_vendor(apple.portal)  # the authorities exist before the test, so any new row is the test's
    before = _fingerprint(apple)
    yield
    assert _fingerprint(apple) == before


def _fingerprint(sim: RunningSimulator) -> tuple[Any, ...]:
    with sim.state.transaction() as session:
        return (
            session.scalar(select(func.count()).select_from(SimPushCertificate)),
            session.scalar(select(func.count()).select_from(SimCertificateAuthority)),
            tuple(session.scalars(select(SimPushCertificate.renewed_at).order_by(SimPushCertificate.id))),
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _refused(sim: RunningSimulator, request: str, code: str, *, status: int = 400) -> dict[str, Any]:
    response = upload(sim.portal, request)
    assert response.status_code == status, (code, response.text)
    body: dict[str, Any] = response.json()
    assert body["error"] == code, body
    assert body["detail"] and "\n" not in body["detail"]
    return body


@functools.cache
def _foreign_pki() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A CA that is not the simulator's, named exactly like the simulator's WWDR intermediate would not help."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Apple Worldwide Developer Relations CA (simulated)")])
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return ca, key


def _vendor_certificate(issuer_name: x509.Name, issuer_key: rsa.RSAPrivateKey, *, marker: bool) -> Vendor:
    key = customer_key(7)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MDM Vendor: Mallory")]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=300))
    )
    if marker:
        builder = builder.add_extension(x509.UnrecognizedExtension(MDM_CSR_SIGNING_OID, b"\x05\x00"), critical=False)
    certificate = builder.sign(issuer_key, hashes.SHA256())
    return Vendor(certificate=certificate, key=key, chain_pem="")


def _pem(*certificates: x509.Certificate) -> str:
    return "".join(cert.public_bytes(serialization.Encoding.PEM).decode() for cert in certificates)


def _with_chain(vendor: Vendor, chain_pem: str) -> str:
    csr = csr_der()
    return _b64(request_plist(csr, chain_pem=chain_pem, signature=sign(vendor, csr)))


@pytest.mark.usefixtures("unchanged")
def test_a_bare_csr_is_refused(apple: RunningSimulator) -> None:
    der = csr_der()
    pem = x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM)
    for request in (pem.decode(), _b64(der), _b64(pem)):
        body = _refused(apple, request, "bare_csr")
        assert "MDM vendor" in body["detail"]


@pytest.mark.usefixtures("unchanged")
def test_a_tampered_csr_or_signature_is_refused(apple: RunningSimulator, vendor: Vendor) -> None:
    csr = csr_der()
    signature = sign(vendor, csr)
    name_at = csr.index(b"Pippin push")
    edited = csr[:name_at] + b"Pippin pusH" + csr[name_at + 11 :]
    _refused(apple, _b64(request_plist(edited, chain_pem=vendor.chain_pem, signature=signature)), "bad_csr")
    # Another valid CSR under the first one's signature: its own signature is fine, the vendor's is not.
    swapped = csr_der(customer_key(2))
    _refused(apple, _b64(request_plist(swapped, chain_pem=vendor.chain_pem, signature=signature)), "bad_signature")
    flipped = signature[:-1] + bytes([signature[-1] ^ 1])
    _refused(apple, _b64(request_plist(csr, chain_pem=vendor.chain_pem, signature=flipped)), "bad_signature")
    # Signed by a different vendor of the simulator's own: the signature does not match the chain's certificate.
    other = get_vendor(apple.portal, "Other Vendor")
    _refused(apple, _b64(request_plist(csr, chain_pem=other.chain_pem, signature=signature)), "bad_signature")


def test_a_foreign_or_incomplete_chain_is_refused(apple: RunningSimulator, vendor: Vendor) -> None:
    foreign_ca, foreign_key = _foreign_pki()
    forged = _vendor_certificate(foreign_ca.subject, foreign_key, marker=True)
    wwdr = x509.load_pem_x509_certificates(vendor.chain_pem.encode())[1:]
    before = _fingerprint(apple)
    # A vendor certificate from another CA, with that CA's chain or with the simulator's WWDR pair after it.
    _refused(apple, _with_chain(forged, _pem(forged.certificate, foreign_ca, foreign_ca)), "foreign_chain")
    _refused(apple, _with_chain(forged, _pem(forged.certificate, *wwdr)), "foreign_chain")
    # The simulator's vendor certificate with a foreign CA slipped into the chain.
    _refused(apple, _with_chain(vendor, _pem(vendor.certificate, wwdr[0], foreign_ca)), "foreign_chain")
    _refused(apple, _with_chain(vendor, _pem(vendor.certificate)), "incomplete_chain")
    _refused(apple, _with_chain(vendor, _pem(vendor.certificate, wwdr[0])), "incomplete_chain")
    _refused(apple, _with_chain(vendor, _pem(vendor.certificate, *wwdr, *wwdr, *wwdr)), "bad_chain")
    _refused(apple, _with_chain(vendor, "not a certificate"), "bad_chain")
    assert _fingerprint(apple) == before


def test_a_wwdr_certificate_without_the_mdm_csr_marker_is_refused(apple: RunningSimulator) -> None:
    with apple.state.transaction() as session:
        authorities = load_authorities(session, now=apple.state.clock.now())
    intermediate = authorities.wwdr_intermediate
    plain = _vendor_certificate(intermediate.certificate.subject, intermediate.key, marker=False)
    before = _fingerprint(apple)
    chain = _pem(plain.certificate, *authorities.wwdr_chain())
    _refused(apple, _with_chain(plain, chain), "not_mdm_vendor")
    assert _fingerprint(apple) == before


@pytest.mark.usefixtures("unchanged")
def test_csrs_for_other_keys_are_refused(apple: RunningSimulator, vendor: Vendor) -> None:
    for key in (
        ec.generate_private_key(ec.SECP256R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505 (the weak key under test)
    ):
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")]))
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.DER)
        )
        request = _b64(request_plist(csr, chain_pem=vendor.chain_pem, signature=sign(vendor, csr)))
        _refused(apple, request, "unsupported_key")


def _plist_with(vendor: Vendor, **overrides: Any) -> str:
    csr = csr_der()
    return _b64(request_plist(csr, chain_pem=vendor.chain_pem, signature=sign(vendor, csr), overrides=overrides))


@pytest.mark.usefixtures("unchanged")
def test_hostile_uploads_are_refused(apple: RunningSimulator, vendor: Vendor) -> None:
    good = signed_request(vendor)
    xml = base64.b64decode(good)
    fields = plistlib.loads(xml)
    entity_bomb = (
        b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><plist version="1.0"><dict><key>PushCertRequestCSR</key>'
        b"<string>&c;</string></dict></plist>"
    )
    cases: list[tuple[str, str]] = [
        (good[: ((len(good) // 2) & ~3) + 1], "not_base64"),  # truncated off a base64 boundary, whatever its length
        (good[: (len(good) // 2) & ~3], "not_a_plist"),  # truncated on a base64 boundary
        ("", "empty_request"),
        ("====", "not_base64"),
        ("\x00\xff\xfe binary \u2603", "not_base64"),
        (_b64(b"hello, world"), "not_a_plist"),
        (_b64(b'{"PushCertRequestCSR": "x"}'), "not_a_plist"),
        (_b64(plistlib.dumps(fields, fmt=plistlib.FMT_BINARY)), "binary_plist"),
        (plistlib.dumps(fields, fmt=plistlib.FMT_BINARY).decode("latin-1"), "binary_plist"),
        (xml.decode(), "not_base64"),  # the plist itself, not base64-encoded
        (_b64(entity_bomb), "not_a_plist"),
        (_b64(entity_bomb.replace(b"<!ENTITY", b"<!entity")), "not_a_plist"),
        (_b64(xml[:-40]), "not_a_plist"),
        (
            _b64(b'<?xml version="1.0"?><plist version="1.0"><integer>' + b"9" * 5000 + b"</integer></plist>"),
            "not_a_plist",
        ),
        (_b64(b"<plist>" + b"<array>" * 3000 + b"</array>" * 3000 + b"</plist>"), "not_a_request"),
        (_b64(plistlib.dumps([1, 2, 3], fmt=plistlib.FMT_XML)), "not_a_request"),
        (_b64(plistlib.dumps({"PushCertRequestCSR": "x"}, fmt=plistlib.FMT_XML)), "not_a_request"),
        (_plist_with(vendor, PushCertRequestCSR=12), "not_a_request"),
        (_plist_with(vendor, PushCertRequestCSR=base64.b64decode(fields["PushCertRequestCSR"])), "not_a_request"),
        (_plist_with(vendor, PushCertCertificateChain=["a", "b"]), "not_a_request"),
        (_plist_with(vendor, PushCertSignature={"a": "b"}), "not_a_request"),
        (_plist_with(vendor, PushCertSignature=True), "not_a_request"),
        (_plist_with(vendor, PushCertSignature="not base64!"), "not_a_request"),
        (_plist_with(vendor, PushCertRequestCSR=""), "not_a_request"),
        (_plist_with(vendor, PushCertRequestCSR=_b64(b"\x30\x82\xff\xff garbage")), "bad_csr"),
        (_plist_with(vendor, PushCertRequestCSR=_b64(b"A" * 30_000)), "bad_csr"),
        (
            _plist_with(
                vendor, PushCertCertificateChain="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            ),
            "bad_chain",
        ),
    ]
    for request, code in cases:
        _refused(apple, request, code)
    _refused(apple, "A" * (64 * 1024 + 4), "request_too_large", status=413)
    _refused(apple, _b64(b"A" * 60_000), "request_too_large", status=413)


@pytest.mark.usefixtures("unchanged")
def test_malformed_bodies_and_fields_are_refused(apple: RunningSimulator, vendor: Vendor) -> None:
    good = signed_request(vendor)
    bodies: list[Any] = [
        {"apple_id": "admin@example.com"},
        {"request": good},
        {"apple_id": "not an apple id", "request": good},
        {"apple_id": "", "request": good},
        {"apple_id": 7, "request": good},
        {"apple_id": "admin@example.com", "request": 7},
        {"apple_id": "admin@example.com", "request": good, "extra": 1},
        [good],
    ]
    for body in bodies:
        for path in ("/portal/push/certificates", "/portal/push/certificates/abc/renew"):
            response = apple.portal.post(path, json=body)
            assert response.status_code == 400 and response.json()["error"], (path, body, response.text)
    for raw in (b"{not json", b"\x00\xff", b"null"):
        response = apple.portal.post(
            "/portal/push/certificates", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    huge = apple.portal.post(
        "/portal/push/certificates", content=b'{"apple_id": "a@b.c", "request": "' + b"A" * (9 * 2**20) + b'"}'
    )
    assert huge.status_code == 413 and huge.json()["error"] == "body_too_large"
    for name in ("", "x" * 53, "two\nlines", 5):
        response = apple.portal.post("/portal/push/vendor-certificates", json={"vendor_name": name})
        assert response.status_code == 400 and response.json()["error"], name


def test_renewals_that_fail_change_nothing(apple: RunningSimulator, vendor: Vendor) -> None:
    issued = create_push_certificate(apple.portal, vendor, apple_id="renewer@example.com")
    before = _fingerprint(apple)
    bare = _b64(csr_der())
    for identifier, request in ((issued["serial"], bare), (issued["topic"], "garbage"), ("x" * 500, bare)):
        response = renew(apple.portal, identifier, request, apple_id="renewer@example.com")
        assert 400 <= response.status_code < 500 and response.json()["error"], response.text
    unknown = renew(
        apple.portal, "com.apple.mgmt.External.nope", signed_request(vendor), apple_id="renewer@example.com"
    )
    assert unknown.status_code == 404
    assert _fingerprint(apple) == before
