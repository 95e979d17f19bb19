"""The reference that each enrollment URL Pippin gives Apple carries: which profile, and which revision of it.

Apple's profiles are immutable (reference 3.5) and each revision is defined anew, so the URL of each definition
can say exactly what the device was promised. A device in Setup Assistant posts its MachineInfo to that URL
(reference 4), and the enrollment endpoint reads the reference back to know the profile and revision the device
enrolls with; "Pending reset" (DESIGN.md) compares it with the revision assigned now.

The reference is opaque and signed, so a device or a stranger cannot point an enrollment at another profile
(say, one whose management can be removed): ``version | profile id | revision | HMAC-SHA256/128``, base64url.
The signing key is ``SecretBox.derive_key``'s for this purpose: stored in the database, sealed with the master key,
and kept when the master key is rotated, so the URLs Apple holds keep verifying. Built and read only here.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import struct
from dataclasses import dataclass
from hashlib import sha256

from pippin.crypto.secrets import SecretBox

_VERSION = 1
_LAYOUT = struct.Struct(">BQI")  # version, profile id, revision
_MAC_BYTES = 16
_PURPOSE = "enrollment-url-reference"  # one of crypto/secrets.py SIGNING_PURPOSES
#: The reference's length in URL characters; anything else is refused before decoding.
REFERENCE_CHARS = len(base64.urlsafe_b64encode(bytes(_LAYOUT.size + _MAC_BYTES)).rstrip(b"="))


@dataclass(frozen=True)
class ProfileRevision:
    """What an enrollment URL points at."""

    profile_id: int
    revision: int


def _mac(box: SecretBox, body: bytes) -> bytes:
    return hmac.new(box.derive_key(_PURPOSE), body, sha256).digest()[:_MAC_BYTES]


def build_reference(box: SecretBox, target: ProfileRevision) -> str:
    """The URL-safe reference to ``target``."""
    body = _LAYOUT.pack(_VERSION, target.profile_id, target.revision)
    return base64.urlsafe_b64encode(body + _mac(box, body)).rstrip(b"=").decode()


def read_reference(box: SecretBox, reference: str) -> ProfileRevision | None:
    """The profile and revision ``reference`` points at; ``None`` for anything Pippin did not sign."""
    if len(reference) != REFERENCE_CHARS or not reference.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(reference + "=" * (-len(reference) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != reference:
        return None  # the last character's spare bits changed: not the text Pippin wrote, whatever it decodes to
    body, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
    if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, _mac(box, body)):
        return None
    version, profile_id, revision = _LAYOUT.unpack(body)
    if version != _VERSION:
        return None
    return ProfileRevision(profile_id=profile_id, revision=revision)
