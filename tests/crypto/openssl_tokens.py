"""Encrypt messages with the openssl binary, the way Apple's portal wraps a DEP token (reference 1.2, 1.3)."""

from __future__ import annotations

import functools
import itertools
import json
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from pippin.crypto.keys import generate_private_key

OPENSSL = "/usr/bin/openssl"


def inner_token_text(payload: dict[str, Any] | str) -> bytes:
    """The MIME text entity Apple encrypts: headers, blank line, the JSON between MESSAGE markers, CRLF lines."""
    body = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return (
        "Content-Type: text/plain;charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 7bit\r\n"
        "\r\n"
        "-----BEGIN MESSAGE-----\r\n"
        f"{body}\r\n"
        "-----END MESSAGE-----\r\n"
    ).encode()


def openssl_encrypt(
    plaintext: bytes, certificate_pem: str, workdir: Path, *, cipher: str = "aes128", outform: str = "SMIME"
) -> bytes:
    """``openssl smime -encrypt -<cipher>`` of ``plaintext`` to the certificate; S/MIME, PEM or DER output."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert = workdir / "recipient.pem"
    cert.write_text(certificate_pem)
    source = workdir / "plain.txt"
    source.write_bytes(plaintext)
    result = subprocess.run(
        [OPENSSL, "smime", "-encrypt", f"-{cipher}", "-binary", "-outform", outform, "-in", str(source), str(cert)],
        capture_output=True,
        check=True,
    )
    return result.stdout


def token_fields(*, expires_at: datetime, suffix: str = "1") -> dict[str, str]:
    """The five fields of a DEP token (reference 1.3), with made-up credentials."""
    return {
        "consumer_key": f"CK_{'a1' * 48}{suffix}",
        "consumer_secret": f"CS_{'b2' * 20}{suffix}",
        "access_token": f"AT_O{'7' * 10}O{'c3' * 20}{suffix}",
        "access_secret": f"AS_{'d4' * 20}{suffix}",
        "access_token_expiry": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def openssl_decrypt(message: bytes, private_key_pem: bytes, workdir: Path) -> bytes:
    """``openssl smime -decrypt``: what a peer does with Apple's token (reference 1.2)."""
    workdir.mkdir(parents=True, exist_ok=True)
    key = workdir / "key.pem"
    key.write_bytes(private_key_pem)
    key.chmod(0o600)
    source = workdir / "token.p7m"
    source.write_bytes(message)
    result = subprocess.run(
        [OPENSSL, "smime", "-decrypt", "-binary", "-in", str(source), "-inkey", str(key)],
        capture_output=True,
        check=True,
    )
    return result.stdout


@functools.cache
def _key_pool() -> tuple[rsa.RSAPrivateKey, ...]:
    return tuple(generate_private_key() for _ in range(4))


def pooled_key_generator() -> Callable[[], rsa.RSAPrivateKey]:
    """A stand-in for ``generate_private_key`` handing out real RSA-2048 keys made once per run, in turn.

    Generating a key takes a noticeable fraction of a second; tests that only need *different* keys in a row
    reuse these. The generator itself is tested in tests/crypto/test_keys_certs.py.
    """
    pool = itertools.cycle(_key_pool())
    return lambda: next(pool)
