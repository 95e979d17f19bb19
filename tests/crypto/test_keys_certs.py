"""RSA keys sealed for storage, and the self-signed certificate an admin uploads to Apple."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from pippin.crypto.certs import (
    DEP_CERTIFICATE_VALIDITY,
    build_self_signed_certificate,
    certificate_to_der,
    certificate_to_pem,
    load_certificate_der,
    load_certificate_pem,
    public_keys_match,
)
from pippin.crypto.keys import (
    generate_private_key,
    load_private_key_der,
    open_private_key,
    private_key_to_pkcs8_der,
    seal_private_key,
)
from pippin.crypto.secrets import SecretBox
from pippin.errors import ConfigurationError, InvalidInput

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate_private_key()


def test_key_is_rsa_2048(key: rsa.RSAPrivateKey) -> None:
    assert key.key_size == 2048
    assert key.public_key().public_numbers().e == 65537


def test_sealed_key_round_trips_and_hides_the_pkcs8_bytes(key: rsa.RSAPrivateKey) -> None:
    box = SecretBox(os.urandom(32))
    sealed = seal_private_key(key, box)
    assert private_key_to_pkcs8_der(key) not in sealed
    assert open_private_key(sealed, box).private_numbers() == key.private_numbers()


def test_damaged_key_bytes_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="damaged"):
        load_private_key_der(b"\x30\x03\x02\x01\x00")


def test_certificate_is_self_signed_non_ca_for_key_encipherment(key: rsa.RSAPrivateKey) -> None:
    cert = build_self_signed_certificate(key, common_name="pippin-dep-acme", now=NOW)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "pippin-dep-acme"
    cert.verify_directly_issued_by(cert)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_encipherment and usage.digital_signature and not usage.key_cert_sign
    assert cert.not_valid_before_utc < NOW < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - NOW == DEP_CERTIFICATE_VALIDITY
    assert public_keys_match(cert, key)
    assert not public_keys_match(cert, generate_private_key())


def test_two_certificates_for_one_name_have_different_serials(key: rsa.RSAPrivateKey) -> None:
    first = build_self_signed_certificate(key, common_name="same", now=NOW)
    second = build_self_signed_certificate(key, common_name="same", now=NOW + timedelta(seconds=1))
    assert first.serial_number != second.serial_number


def test_pem_and_der_round_trip(key: rsa.RSAPrivateKey) -> None:
    cert = build_self_signed_certificate(key, common_name="x", now=NOW)
    pem = certificate_to_pem(cert)
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert load_certificate_pem(pem) == cert
    assert load_certificate_der(certificate_to_der(cert)) == cert


@pytest.mark.parametrize("junk", [b"", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", b"\x00" * 10])
def test_junk_is_not_a_certificate(junk: bytes) -> None:
    with pytest.raises(InvalidInput):
        load_certificate_pem(junk)
    with pytest.raises(InvalidInput):
        load_certificate_der(junk)
