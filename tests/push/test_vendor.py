"""The MDM vendor certificate: imported with its key and chain, it signs the request Apple's portal takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text

from pippin.crypto.keys import generate_private_key
from pippin.crypto.secrets import SecretBox
from pippin.errors import InvalidInput
from pippin.push import status as status_service
from pippin.push import vendor as vendor_service
from pippin.push.schemas import RequestKind, VendorImportResult
from pippin.store.db import SessionFactory, transaction
from tests.actors import TEST_ACTOR
from tests.push.apple_ca import authority, issue_push_certificate, issue_vendor_certificate, pem, read_signed_request
from tests.push.conftest import make_request, pending_csr, snapshot, upload

VENDOR_KEY = generate_private_key()


def _key_pem(key: rsa.RSAPrivateKey, encryption: Any = None) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )


def _import(factory: SessionFactory, box: SecretBox, certificate: bytes, key: bytes, **kw: Any) -> VendorImportResult:
    with transaction(factory) as session:
        return vendor_service.import_vendor_certificate(
            session, certificate=certificate, key=key, box=box, actor=TEST_ACTOR, **kw
        )


def _chain() -> bytes:
    _, root, _, intermediate = authority()
    return pem(intermediate, root)


def test_a_signed_request_carries_the_csr_the_chain_and_a_signature_apple_can_check(
    session_factory: SessionFactory, box: SecretBox
) -> None:
    vendor = issue_vendor_certificate(VENDOR_KEY)
    imported = _import(session_factory, box, pem(vendor) + _chain(), _key_pem(VENDOR_KEY))
    assert imported.warnings == [] and imported.vendor.chain_length == 2
    assert "CN=MDM Vendor: Example Org" in imported.vendor.subject

    made = make_request(session_factory, box)
    assert made.kind == RequestKind.signed_request and made.warnings == []
    csr, chain = read_signed_request(made.content)
    assert chain[0] == vendor and [c.subject for c in chain[1:]] == [authority()[3].subject, authority()[1].subject]
    # The CSR inside is the pending one; the certificate Apple issues for it goes in.
    assert csr.public_bytes(serialization.Encoding.PEM).decode() == pending_csr(session_factory)
    assert upload(session_factory, box, pem(issue_push_certificate(pending_csr(session_factory)))).certificate.topic
    # --unsigned still gives the plain CSR.
    assert make_request(session_factory, box, unsigned=True).kind == RequestKind.csr


def test_the_chain_may_come_in_its_own_file_and_in_any_order(session_factory: SessionFactory, box: SecretBox) -> None:
    _, root, _, intermediate = authority()
    vendor = issue_vendor_certificate(VENDOR_KEY)
    imported = _import(session_factory, box, pem(vendor), _key_pem(VENDOR_KEY), chain=pem(root, intermediate))
    assert imported.vendor.chain_length == 2
    _, chain = read_signed_request(make_request(session_factory, box).content)
    assert [c.subject for c in chain] == [vendor.subject, intermediate.subject, root.subject]


def test_without_a_chain_it_is_imported_with_a_warning(session_factory: SessionFactory, box: SecretBox) -> None:
    imported = _import(session_factory, box, pem(issue_vendor_certificate(VENDOR_KEY)), _key_pem(VENDOR_KEY))
    assert imported.vendor.chain_length == 0 and any("No chain was given" in w for w in imported.warnings)


def test_a_vendor_certificate_near_its_end_warns(session_factory: SessionFactory, box: SecretBox) -> None:
    vendor = issue_vendor_certificate(VENDOR_KEY, valid_for=timedelta(days=10))
    imported = _import(session_factory, box, pem(vendor) + _chain(), _key_pem(VENDOR_KEY))
    assert any("expires in 9 days" in w for w in imported.warnings)
    assert imported.vendor.expiry_level == "warning"
    with transaction(session_factory) as session:
        shown = status_service.read_status(session)
    assert shown.vendor is not None and shown.vendor.days_left == 9
    assert "The MDM vendor certificate expires in 9 days" in shown.next_step


def test_an_expired_vendor_certificate_signs_no_request(session_factory: SessionFactory, box: SecretBox) -> None:
    vendor = issue_vendor_certificate(VENDOR_KEY, valid_for=timedelta(days=10))
    _import(session_factory, box, pem(vendor) + _chain(), _key_pem(VENDOR_KEY))
    later = datetime.now(UTC) + timedelta(days=11)
    before = snapshot(session_factory)
    with pytest.raises(InvalidInput, match="vendor certificate expired") as refused:
        make_request(session_factory, box, now=later)
    assert "--unsigned" in str(refused.value)
    assert snapshot(session_factory) == before


def _bad_imports() -> dict[str, tuple[dict[str, Any], str]]:
    vendor = pem(issue_vendor_certificate(VENDOR_KEY))
    key = _key_pem(VENDOR_KEY)
    other_key = generate_private_key()
    _, root, _, intermediate = authority()
    stranger = issue_vendor_certificate(other_key)  # issued by the intermediate, but not the vendor's chain
    expired = issue_vendor_certificate(VENDOR_KEY, not_before=datetime.now(UTC) - timedelta(days=400))
    return {
        "the key of another certificate": ({"certificate": vendor, "key": _key_pem(other_key)}, "does not belong"),
        "a password-protected key": (
            {"certificate": vendor, "key": _key_pem(VENDOR_KEY, serialization.BestAvailableEncryption(b"pw"))},
            "protected by a password",
        ),
        "a certificate as the key": ({"certificate": vendor, "key": vendor}, "holds a certificate, not a private key"),
        "a key as the certificate": ({"certificate": key, "key": key}, "a private key, with no certificate"),
        "no certificate": ({"certificate": b"", "key": key}, "empty"),
        "an expired vendor certificate": ({"certificate": pem(expired), "key": key}, "expired on"),
        "a chain certificate not in the chain": (
            {"certificate": vendor, "key": key, "chain": pem(intermediate, root, stranger)},
            "not part of its chain",
        ),
        "an oversized file": ({"certificate": vendor + b"\n" * 100_001, "key": key}, "larger than 100,000 bytes"),
        "a small key": (
            {
                "certificate": vendor,
                "key": _key_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),  # noqa: S505 (refused on purpose)
            },
            "1024 bits",
        ),
    }


def test_every_wrong_import_is_refused_and_changes_nothing(session_factory: SessionFactory, box: SecretBox) -> None:
    for name, (files, words) in _bad_imports().items():
        before = snapshot(session_factory)
        with pytest.raises(InvalidInput) as refused:
            _import(session_factory, box, **files)
        assert words in str(refused.value), name
        assert snapshot(session_factory) == before, name


def test_the_vendor_key_is_stored_only_sealed(session_factory: SessionFactory, box: SecretBox) -> None:
    _import(session_factory, box, pem(issue_vendor_certificate(VENDOR_KEY)), _key_pem(VENDOR_KEY))
    with transaction(session_factory) as session:
        sealed, certificate_pem, chain_pem = session.execute(
            text("SELECT private_key_encrypted, certificate_pem, chain_pem FROM push_vendor_certificates")
        ).one()
    clear = VENDOR_KEY.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert box.sealed_by_this_key(bytes(sealed)) and clear not in bytes(sealed)
    assert box.decrypt(bytes(sealed)) == clear
    assert "PRIVATE KEY" not in certificate_pem + chain_pem
