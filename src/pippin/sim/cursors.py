"""Fetch and sync cursors: opaque, MAC-signed, stateless (reference section 6).

A cursor carries the MDM server it belongs to, its kind, a position, the snapshot that froze a fetch, and when it
was issued; an HMAC-SHA256 over those fields with the organisation's ``cursor_secret`` makes forged or edited
cursors detectable without any table. Encoded as base64url without padding, like Apple's, and far under the
documented 1000-character maximum.

Kinds: ``fetch`` (a full fetch in progress: ``position`` is the last ``assign_seq`` served, ``snapshot`` the
newest change-log sequence at the fetch's start) and ``sync`` (``position`` is the last change-log sequence
served). The final page of a fetch hands out a ``sync`` cursor at the snapshot, which is how fetch hands over to
sync, and why fetching with it again is ``EXHAUSTED_CURSOR``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pippin.sim.wire import AppleError

CURSOR_LIFETIME = timedelta(days=7)
MAX_CURSOR_LENGTH = 1000
_VERSION = "1"
_MAC_BYTES = 16

CursorKind = Literal["fetch", "sync"]


@dataclass(frozen=True)
class Cursor:
    server_id: int
    kind: CursorKind
    position: int
    snapshot: int
    issued_at: datetime


def _mac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_cursor(cursor: Cursor, *, secret: str) -> str:
    issued_ms = int(cursor.issued_at.timestamp() * 1000)
    fields = f"{_VERSION}:{cursor.server_id}:{cursor.kind}:{cursor.position}:{cursor.snapshot}:{issued_ms}"
    message = fields.encode("ascii")
    raw = message + b":" + _mac(secret, message)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str, *, secret: str, server_id: int, now: datetime) -> Cursor:
    """Check and read a cursor a client sent back.

    Garbled, forged, or another server's cursor -> ``INVALID_CURSOR``; older than 7 days by the simulator's
    clock -> ``EXPIRED_CURSOR``.
    """
    invalid = AppleError(400, "INVALID_CURSOR")
    if not text or len(text) > MAX_CURSOR_LENGTH or not text.isascii():
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise invalid from None
    message, separator, mac = raw[: -_MAC_BYTES - 1], raw[-_MAC_BYTES - 1 : -_MAC_BYTES], raw[-_MAC_BYTES:]
    if separator != b":" or not message or not hmac.compare_digest(mac, _mac(secret, message)):
        raise invalid
    try:
        version, server, kind, position, snapshot, issued_ms = message.decode("ascii").split(":")
        cursor = Cursor(
            server_id=int(server),
            kind="fetch" if kind == "fetch" else "sync",
            position=int(position),
            snapshot=int(snapshot),
            issued_at=datetime.fromtimestamp(int(issued_ms) / 1000, tz=UTC),
        )
    except (UnicodeDecodeError, ValueError, OverflowError, OSError):
        raise invalid from None
    if version != _VERSION or kind not in ("fetch", "sync") or cursor.server_id != server_id:
        raise invalid
    if now - cursor.issued_at > CURSOR_LIFETIME:
        raise AppleError(400, "EXPIRED_CURSOR")
    return cursor
