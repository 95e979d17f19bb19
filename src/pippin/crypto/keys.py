"""RSA private keys: generation, PKCS#8 serialization, and sealing with the master key for storage.

A private key is never stored or passed around as clear PEM: it is serialized to PKCS#8 DER and then sealed by
the :class:`~pippin.crypto.secrets.SecretBox` before it reaches the database.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pippin.crypto.secrets import SecretBox
from pippin.errors import ConfigurationError

#: Every DEP peer uses 2048-bit RSA (reference section 1.1); Apple encrypts the token to it with PKCS#1 v1.5.
RSA_KEY_BITS = 2048
RSA_PUBLIC_EXPONENT = 65537


#: Makes a fresh private key; injected where keys are made, so tests can hand out pre-made ones.
KeyGenerator = Callable[[], rsa.RSAPrivateKey]


def generate_private_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 key."""
    return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)


def private_key_to_pkcs8_der(key: rsa.RSAPrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 DER, ready to be sealed; never store this as it is."""
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key_der(der: bytes, *, validated: bool = False) -> rsa.RSAPrivateKey:
    """Read a PKCS#8 DER RSA key back; anything else means stored data is damaged.

    ``validated``: the key was checked when it was made or imported, and these are its bytes unchanged, so
    OpenSSL's consistency check (about 35 ms for RSA-2048, more than the rest of an enrollment) is not run again.
    """
    try:
        key = serialization.load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=validated)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(
            "A stored private key is damaged.",
            hint="Restore the database from a backup, or create a new key pair and upload its certificate to Apple.",
        )
    return key


def seal_private_key(key: rsa.RSAPrivateKey, box: SecretBox) -> bytes:
    """The key encrypted with the master key: the only form in which it is stored."""
    return box.encrypt(private_key_to_pkcs8_der(key))


def open_private_key(sealed: bytes, box: SecretBox) -> rsa.RSAPrivateKey:
    """The key :func:`seal_private_key` stored.

    Every sealed key was an ``RSAPrivateKey`` already (generated, or loaded and checked by ``cryptography``), and
    the box's AES-GCM tag proves the bytes are the ones sealed: checking the key again would find nothing new.
    """
    return load_private_key_der(box.decrypt(sealed), validated=True)
