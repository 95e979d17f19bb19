"""CMS EnvelopedData: what openssl encrypts (AES-128/192/256, 3DES; S/MIME, PEM, DER) decrypts; junk is refused."""

from __future__ import annotations

import base64
import random
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from pippin.crypto.certs import build_self_signed_certificate, certificate_to_pem
from pippin.crypto.cms import (
    DecryptionFailed,
    NotEnvelopedData,
    WrongRecipient,
    decrypt_enveloped,
    is_addressed_to,
    mime_text_body,
    to_der,
)
from pippin.crypto.keys import generate_private_key
from tests.crypto.openssl_tokens import OPENSSL, inner_token_text, openssl_encrypt

NOW = datetime.now(UTC)
#: Noise that is the same in every process of a run, since the test ids below are made of it (pytest-xdist's
#: processes must collect the same tests).
NOISE = random.Random(0x9E).randbytes(575)


@dataclass(frozen=True)
class KeyPair:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> str:
        return certificate_to_pem(self.cert)


def _pair(name: str) -> KeyPair:
    key = generate_private_key()
    return KeyPair(key, build_self_signed_certificate(key, common_name=name, now=NOW))


@pytest.fixture(scope="module")
def ours() -> KeyPair:
    return _pair("pippin-dep-ours")


@pytest.fixture(scope="module")
def theirs() -> KeyPair:
    return _pair("pippin-dep-ours")  # same subject on purpose: only issuer+serial tells them apart


PLAINTEXT = inner_token_text({"consumer_key": "CK_1"})


@pytest.mark.parametrize("cipher", ["aes128", "aes256", "des3", "aes192"])
@pytest.mark.parametrize("outform", ["SMIME", "PEM", "DER"])
def test_openssl_messages_decrypt(ours: KeyPair, tmp_path: Path, cipher: str, outform: str) -> None:
    message = openssl_encrypt(PLAINTEXT, ours.pem, tmp_path, cipher=cipher, outform=outform)
    assert is_addressed_to(message, ours.cert)
    assert decrypt_enveloped(message, private_key=ours.key, certificate=ours.cert) == PLAINTEXT


def test_message_for_another_certificate_is_wrong_recipient(ours: KeyPair, theirs: KeyPair, tmp_path: Path) -> None:
    message = openssl_encrypt(PLAINTEXT, theirs.pem, tmp_path)
    assert not is_addressed_to(message, ours.cert)
    with pytest.raises(WrongRecipient):
        decrypt_enveloped(message, private_key=ours.key, certificate=ours.cert)


def test_message_with_several_recipients_opens_for_each(ours: KeyPair, theirs: KeyPair, tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_text(ours.pem)
    (tmp_path / "b.pem").write_text(theirs.pem)
    (tmp_path / "in").write_bytes(PLAINTEXT)
    message = subprocess.run(
        [
            OPENSSL,
            "smime",
            "-encrypt",
            "-des3",
            "-binary",
            "-in",
            str(tmp_path / "in"),
            *(str(tmp_path / n) for n in ("a.pem", "b.pem")),
        ],
        capture_output=True,
        check=True,
    ).stdout
    for pair in (ours, theirs):
        assert decrypt_enveloped(message, private_key=pair.key, certificate=pair.cert) == PLAINTEXT


@pytest.mark.parametrize("cipher", ["aes128", "des3"])
def test_damaged_ciphertext_is_decryption_failed(ours: KeyPair, tmp_path: Path, cipher: str) -> None:
    der = bytearray(openssl_encrypt(PLAINTEXT, ours.pem, tmp_path, cipher=cipher, outform="DER"))
    der[-1] ^= 0xFF  # last byte of the encrypted content: the padding no longer checks out
    der[-9] ^= 0xFF
    with pytest.raises(DecryptionFailed):
        decrypt_enveloped(bytes(der), private_key=ours.key, certificate=ours.cert)


@pytest.mark.parametrize("cut", [1, 10, 100, 300])
def test_truncated_smime_and_der_are_refused(ours: KeyPair, tmp_path: Path, cut: int) -> None:
    smime = openssl_encrypt(PLAINTEXT, ours.pem, tmp_path)
    der = openssl_encrypt(PLAINTEXT, ours.pem, tmp_path, outform="DER")
    for truncated in (smime.rstrip()[:-cut], der[:-cut]):
        with pytest.raises((NotEnvelopedData, DecryptionFailed)):
            decrypt_enveloped(truncated, private_key=ours.key, certificate=ours.cert)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"\x00" + NOISE[:511], "MIME entity"),
        (b"\x30\x82\xff\xff" + NOISE[511:575], "well-formed"),
        (b"-----BEGIN PKCS7-----\nnot base64!\n-----END PKCS7-----\n", "base64"),
        (b"-----BEGIN PKCS7-----\nMIIB\n", "END"),
        (b"Content-Type: text/plain\n\nhello\n", "text/plain"),
        (b"Content-Type: application/pkcs7-mime\nContent-Transfer-Encoding: 7bit\n\nxx\n", "base64"),
    ],
)
def test_junk_is_not_enveloped_data(ours: KeyPair, data: bytes, reason: str) -> None:
    with pytest.raises(NotEnvelopedData, match=reason):
        decrypt_enveloped(data, private_key=ours.key, certificate=ours.cert)


def _der_length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


@pytest.mark.parametrize("tag", [0x30, 0xA0])
def test_deeply_nested_der_is_refused_not_crashed(ours: KeyPair, tag: int) -> None:
    nested = b""
    for _ in range(20_000):
        nested = bytes([tag]) + _der_length(len(nested)) + nested
    enveloped_oid = bytes.fromhex("06092a864886f70d010703")
    hostile = b"\x30" + _der_length(len(enveloped_oid) + len(nested)) + enveloped_oid + nested
    for data in (nested, hostile):
        with pytest.raises(NotEnvelopedData):
            decrypt_enveloped(data, private_key=ours.key, certificate=ours.cert)


def test_a_certificate_is_named_as_such(ours: KeyPair) -> None:
    with pytest.raises(NotEnvelopedData, match="PEM certificate"):
        to_der(ours.pem.encode())


def test_signed_data_is_not_enveloped(ours: KeyPair, tmp_path: Path) -> None:
    key_path = tmp_path / "key.pem"
    from cryptography.hazmat.primitives import serialization

    key_path.write_bytes(
        ours.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "cert.pem").write_text(ours.pem)
    (tmp_path / "in").write_bytes(b"hi")
    signed = subprocess.run(
        [
            OPENSSL,
            "smime",
            "-sign",
            "-outform",
            "DER",
            "-in",
            str(tmp_path / "in"),
            "-signer",
            str(tmp_path / "cert.pem"),
            "-inkey",
            str(key_path),
        ],
        capture_output=True,
        check=True,
    ).stdout
    with pytest.raises(NotEnvelopedData, match="signed_data"):
        decrypt_enveloped(signed, private_key=ours.key, certificate=ours.cert)


def test_pem_armoured_base64_of_der_round_trips(ours: KeyPair, tmp_path: Path) -> None:
    der = openssl_encrypt(PLAINTEXT, ours.pem, tmp_path, outform="DER")
    armoured = b"-----BEGIN CMS-----\n" + base64.encodebytes(der) + b"-----END CMS-----\n"
    assert to_der(armoured) == der


def test_mime_text_body_unwraps_headers_and_encodings() -> None:
    assert mime_text_body(PLAINTEXT).startswith("-----BEGIN MESSAGE-----")
    encoded = b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" + base64.b64encode(
        "h\u00e9".encode()
    )
    assert mime_text_body(encoded) == "h\u00e9"
    assert mime_text_body(b"bare text") == "bare text"


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe\x00garbage", b"Content-Type: image/png\n\n\x89PNG", b"Content-Type: text/plain; charset=nope\n\nhi"],
)
def test_mime_text_body_refuses_what_is_not_text(data: bytes) -> None:
    with pytest.raises(NotEnvelopedData):
        mime_text_body(data)
