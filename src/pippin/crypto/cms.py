"""CMS (PKCS#7) EnvelopedData: unwrap S/MIME, PEM or DER, and decrypt with a key and its certificate.

Apple's DEP server token is an S/MIME entity around a base64 CMS EnvelopedData, encrypted to the certificate
the admin uploaded, with AES-128-CBC seen in practice and 3DES-CBC handled by peers (reference section 1.2).
``cryptography``'s PKCS#7 decryption covers AES-128/256-CBC; for the other content ciphers (3DES, AES-192) this
module parses the structure with ``asn1crypto`` and decrypts with ``cryptography``'s primitives.
The decrypted content is itself a MIME text entity (reference section 1.3); :func:`mime_text_body` unwraps it.

Callers limit the input size before calling in; every malformed input becomes a :class:`CMSError`.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import re
from email.message import EmailMessage

from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7

from pippin.errors import InvalidInput

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_SMIME_TYPES = ("application/pkcs7-mime", "application/x-pkcs7-mime")


class CMSError(InvalidInput):
    """The input is not a CMS EnvelopedData that this key can open."""


class NotEnvelopedData(CMSError):
    """Not an encrypted CMS message at all: random bytes, a certificate, a truncated or empty file."""


class WrongRecipient(CMSError):
    """A well-formed EnvelopedData encrypted to some other certificate."""


class DecryptionFailed(CMSError):
    """Addressed to this certificate, yet the content does not decrypt: the message is damaged."""


class UnsupportedCipher(CMSError):
    """Encrypted with a content cipher Pippin does not implement."""


def _from_smime(data: bytes) -> bytes:
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    content_type = message.get_content_type()
    if content_type not in _SMIME_TYPES:
        raise NotEnvelopedData(f"It is a MIME entity of type {content_type}, not an S/MIME encrypted message.")
    encoding = str(message.get("Content-Transfer-Encoding", "base64")).strip().lower()
    payload = message.get_payload()
    if encoding != "base64" or not isinstance(payload, str):
        raise NotEnvelopedData("Its S/MIME body is not base64-encoded.")
    return _strict_base64(payload)


def _strict_base64(text: str | bytes) -> bytes:
    raw = text.encode("ascii", errors="replace") if isinstance(text, str) else text
    compact = b"".join(raw.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NotEnvelopedData("Its base64 body is damaged or cut short.") from exc


def to_der(data: bytes) -> bytes:
    """The DER bytes inside S/MIME, PEM (``PKCS7``/``CMS``) or already-DER input."""
    stripped = data.lstrip()
    if not stripped:
        raise NotEnvelopedData("The file is empty.")
    if stripped.startswith(b"-----BEGIN"):
        match = _PEM_BLOCK.search(stripped)
        if match is None:
            raise NotEnvelopedData("It starts like PEM but has no matching -----END----- line.")
        label = match.group(1).decode("ascii")
        if label not in ("PKCS7", "CMS"):
            raise NotEnvelopedData(f"It is a PEM {label.lower()}, not an encrypted message.")
        return _strict_base64(match.group(2))
    if stripped[0] == 0x30:
        return stripped
    return _from_smime(stripped)


def _load_enveloped(der: bytes) -> asn1_cms.EnvelopedData:
    try:
        info = asn1_cms.ContentInfo.load(der, strict=True)
        content_type = info["content_type"].native
        if content_type != "enveloped_data":
            raise NotEnvelopedData(f"It is CMS {content_type}, not an encrypted (enveloped) message.")
        enveloped = info["content"]
        # Touch every part now, so a truncated or hostile structure fails here rather than halfway through.
        _ = enveloped.native
    except CMSError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise NotEnvelopedData("It is not a well-formed CMS message (damaged or cut short).") from exc
    assert isinstance(enveloped, asn1_cms.EnvelopedData)
    return enveloped


def _issuer_and_serial(certificate: x509.Certificate) -> tuple[bytes, int]:
    return certificate.issuer.public_bytes(), certificate.serial_number


def _subject_key_identifier(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _matching_encrypted_key(enveloped: asn1_cms.EnvelopedData, certificate: x509.Certificate) -> bytes | None:
    """The content key encrypted for ``certificate``, if one of the recipients is that certificate."""
    issuer, serial = _issuer_and_serial(certificate)
    key_id = _subject_key_identifier(certificate)
    for recipient in enveloped["recipient_infos"]:
        if recipient.name != "ktri":
            continue
        info = recipient.chosen
        rid = info["rid"]
        if rid.name == "issuer_and_serial_number":
            matches = rid.chosen["issuer"].dump() == issuer and rid.chosen["serial_number"].native == serial
        else:
            matches = key_id is not None and rid.chosen.native == key_id
        if matches:
            encrypted_key: bytes = info["encrypted_key"].native
            return encrypted_key
    return None


def is_addressed_to(data: bytes, certificate: x509.Certificate) -> bool:
    """Whether the encrypted message ``data`` has ``certificate`` among its recipients (no decryption)."""
    return _matching_encrypted_key(_load_enveloped(to_der(data)), certificate) is not None


def _content_cipher(name: str, key: bytes) -> CipherAlgorithm:
    if name == "tripledes":
        return TripleDES(key)
    if name == "aes":
        return algorithms.AES(key)
    raise UnsupportedCipher(f"It is encrypted with {name}, which Pippin does not support.")


def _decrypt_with_primitives(
    enveloped: asn1_cms.EnvelopedData, encrypted_key: bytes, private_key: rsa.RSAPrivateKey
) -> bytes:
    """RSA PKCS#1 v1.5 key transport, then a CBC content cipher: the cases ``pkcs7_decrypt_der`` lacks."""
    content_info = enveloped["encrypted_content_info"]
    algorithm = content_info["content_encryption_algorithm"]
    encrypted_content = content_info["encrypted_content"].native
    try:
        cipher_name = algorithm.encryption_cipher
        mode_name = algorithm.encryption_mode
        iv = algorithm.encryption_iv
        block_bits = algorithm.encryption_block_size * 8
    except ValueError as exc:
        raise UnsupportedCipher("It is encrypted with a content cipher Pippin does not support.") from exc
    if mode_name != "cbc" or not isinstance(encrypted_content, bytes):
        raise UnsupportedCipher(f"It is encrypted with {cipher_name} in {mode_name} mode; Pippin needs CBC.")
    try:
        content_key = private_key.decrypt(encrypted_key, asymmetric_padding.PKCS1v15())
        decryptor = Cipher(_content_cipher(cipher_name, content_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(encrypted_content) + decryptor.finalize()
        unpadder = symmetric_padding.PKCS7(block_bits).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise DecryptionFailed("It is addressed to this key but does not decrypt: it is damaged.") from exc


def decrypt_enveloped(data: bytes, *, private_key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> bytes:
    """The plaintext of a CMS EnvelopedData (S/MIME, PEM or DER) encrypted to ``certificate``."""
    der = to_der(data)
    enveloped = _load_enveloped(der)
    encrypted_key = _matching_encrypted_key(enveloped, certificate)
    if encrypted_key is None:
        raise WrongRecipient("It is encrypted to a different certificate.")
    try:
        return pkcs7.pkcs7_decrypt_der(der, certificate, private_key, [])
    except UnsupportedAlgorithm:
        return _decrypt_with_primitives(enveloped, encrypted_key, private_key)
    except ValueError as exc:
        raise DecryptionFailed("It is addressed to this key but does not decrypt: it is damaged.") from exc


def mime_text_body(plaintext: bytes) -> str:
    """The text of a MIME ``text/plain`` entity (headers, blank line, body), or the bytes as text if bare."""
    head = plaintext.lstrip()[:200].lower()
    if head.startswith((b"content-type:", b"content-transfer-encoding:", b"mime-version:")):
        message = email.message_from_bytes(plaintext, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if message.get_content_maintype() != "text":
            raise NotEnvelopedData(f"Its decrypted content is {message.get_content_type()}, not text.")
        try:
            body = message.get_content()
        except (LookupError, ValueError) as exc:
            raise NotEnvelopedData("Its decrypted text is not readable in the declared character set.") from exc
        assert isinstance(body, str)
        return body
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotEnvelopedData("Its decrypted content is not UTF-8 text.") from exc
