"""Reading certificates and keys as admins hand them over: every usual form taken, every mix-up named."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pippin.crypto.pem import load_certificates, load_private_key
from pippin.errors import InvalidInput
from tests.crypto.openssl_tokens import pooled_key_generator
from tests.push.apple_ca import authority, pem

KEY = pooled_key_generator()()
Encoding, Format = serialization.Encoding, serialization.PrivateFormat


@pytest.mark.parametrize(
    ("encoding", "form"),
    [
        (Encoding.PEM, Format.PKCS8),
        (Encoding.PEM, Format.TraditionalOpenSSL),
        (Encoding.DER, Format.PKCS8),
        (Encoding.DER, Format.TraditionalOpenSSL),
    ],
)
def test_an_unencrypted_rsa_key_is_read_in_each_form(encoding: Encoding, form: Format) -> None:
    data = KEY.private_bytes(encoding, form, serialization.NoEncryption())
    assert load_private_key(data, what="The key", hint="h").private_numbers() == KEY.private_numbers()


@pytest.mark.parametrize("encoding", [Encoding.PEM, Encoding.DER])
def test_a_password_protected_key_is_refused_saying_how_to_remove_it(encoding: Encoding) -> None:
    data = KEY.private_bytes(encoding, Format.PKCS8, serialization.BestAvailableEncryption(b"secret"))
    with pytest.raises(InvalidInput, match="protected by a password") as refused:
        load_private_key(data, what="The key", hint="h")
    assert "openssl pkey" in str(refused.value)


def test_a_key_beside_a_certificate_in_one_file_is_found() -> None:
    data = pem(authority()[1]) + KEY.private_bytes(Encoding.PEM, Format.PKCS8, serialization.NoEncryption())
    assert load_private_key(data, what="The key", hint="h").key_size == 2048


def test_an_ec_key_is_refused_as_not_rsa() -> None:
    data = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, Format.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InvalidInput, match="not an RSA key"):
        load_private_key(data, what="The key", hint="h")


def test_two_keys_in_one_file_are_refused() -> None:
    one = KEY.private_bytes(Encoding.PEM, Format.PKCS8, serialization.NoEncryption())
    with pytest.raises(InvalidInput, match="holds 2 private keys"):
        load_private_key(one + one, what="The key", hint="h")


def test_certificates_keep_their_order_and_headers_around_them_are_ignored() -> None:
    _, root, _, intermediate = authority()
    data = b"Bag Attributes\n    friendlyName: x\n" + pem(intermediate) + b"subject=...\n" + pem(root)
    assert load_certificates(data, expected="x", hint="h") == [intermediate, root]


def test_errors_never_echo_the_file() -> None:
    secret = b"-----BEGIN CERTIFICATE-----\nTOP-SECRET-TEXT\n-----END CERTIFICATE-----\n"
    with pytest.raises(InvalidInput) as refused:
        load_certificates(secret, expected="the certificate", hint="h")
    assert "TOP-SECRET" not in str(refused.value)
