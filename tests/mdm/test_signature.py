"""The Mdm-Signature reader: the lean DER slicer and asn1crypto agree, and every bad signature is refused."""

from __future__ import annotations

import base64

import pytest
from asn1crypto import cms as asn1_cms
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from pippin.mdm import signature as mdm_signature
from pippin.mdm.signature import (
    SignatureRefused,
    check_body_digest,
    check_signature,
    decode_header,
    read_signature,
)
from tests.conftest import fixture_path
from tests.mdm.device_identities import make_authority

AUTHORITY = make_authority()
DEVICE = AUTHORITY.issue("device")
OTHER = AUTHORITY.issue("other")


def _body() -> bytes:
    return fixture_path("nanomdm", "TokenUpdate.1.plist").read_bytes()


def _der(body: bytes) -> bytes:
    return decode_header(DEVICE.sign(body))


def test_the_lean_reader_reads_what_asn1crypto_reads() -> None:
    der = _der(_body())
    lean = mdm_signature._lean_parts(der)
    assert lean == mdm_signature._asn1crypto_parts(der)
    assert lean.certificates == (DEVICE.der,)
    assert lean.signer_serial == DEVICE.certificate.serial_number


def test_a_signature_of_the_body_verifies() -> None:
    body = _body()
    parts = read_signature(_der(body))
    check_body_digest(parts, body)
    check_signature(parts, DEVICE.certificate.public_key())


def test_another_body_is_refused_by_its_digest() -> None:
    parts = read_signature(_der(_body()))
    with pytest.raises(SignatureRefused, match="not made over this request's body"):
        check_body_digest(parts, _body() + b" ")


def test_a_signature_verified_with_another_key_is_refused() -> None:
    parts = read_signature(_der(_body()))
    with pytest.raises(SignatureRefused, match="does not verify"):
        check_signature(parts, OTHER.certificate.public_key())


def test_a_damaged_signature_value_is_refused() -> None:
    der = bytearray(_der(_body()))
    der[-5] ^= 0xFF  # inside the signature octets, the last element
    parts = read_signature(bytes(der))
    with pytest.raises(SignatureRefused):
        check_signature(parts, DEVICE.certificate.public_key())


def test_two_signers_go_to_asn1crypto_and_are_refused() -> None:
    two = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(b"body")
        .add_signer(DEVICE.certificate, DEVICE.key, hashes.SHA256())
        .add_signer(OTHER.certificate, OTHER.key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    )
    with pytest.raises(mdm_signature._Unknown):
        mdm_signature._lean_parts(two)
    with pytest.raises(SignatureRefused, match="exactly one signer"):
        read_signature(two)


def test_an_attached_signature_is_refused() -> None:
    attached = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(b"body")
        .add_signer(DEVICE.certificate, DEVICE.key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    with pytest.raises(SignatureRefused, match="detached"):
        read_signature(attached)


def test_indefinite_lengths_are_read_by_the_fallback() -> None:
    """BER (as real devices send MachineInfo) is not the lean reader's; asn1crypto reads it the same."""
    der = _der(b"body")
    info = asn1_cms.ContentInfo.load(der)
    signed_data = info["content"].untag().dump(force=True)
    ber = b"\x30\x80" + info["content_type"].dump() + b"\xa0\x80" + signed_data + b"\x00\x00\x00\x00"
    with pytest.raises(mdm_signature._Unknown):
        mdm_signature._lean_parts(ber)
    parts = read_signature(ber)
    check_body_digest(parts, b"body")
    check_signature(parts, DEVICE.certificate.public_key())


@pytest.mark.parametrize(
    "header",
    ["", "not base64!", base64.b64encode(b"\x30\x03\x02\x01\x01").decode(), "A" * 20_000],
    ids=["empty", "not-base64", "not-cms", "too-long"],
)
def test_headers_that_are_no_signature_are_refused(header: str) -> None:
    with pytest.raises(SignatureRefused):
        read_signature(decode_header(header))


def test_every_truncation_is_refused_never_an_other_error() -> None:
    der = _der(b"body")
    for length in range(0, len(der), 7):
        with pytest.raises(SignatureRefused):
            parts = read_signature(der[:length])
            check_body_digest(parts, b"body")
            check_signature(parts, DEVICE.certificate.public_key())
