"""Apple's rules for one push request (``POST /3/device/{token}``), header by header, with Apple's reasons.

Reference section 5 and Apple's provider API: the path names the device token (hex), the ``apns-*`` headers are
optional for an MDM push certificate, and every refusal is a status with ``{"reason": ...}``. Checks run in a fixed
order (method, path, size, headers, payload) and the first failure is the answer, so one request has one reason.
What depends on the token's registration (410, DeviceTokenNotForTopic) is the delivery's business, not this file's.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PUSH_PATH = "/3/device/"
#: Apple's limit for every push type but VoIP (reference section 5: 413 PayloadTooLarge).
MAX_PAYLOAD_BYTES = 4096
#: Today's device tokens are 32 bytes, written as 64 hex digits (reference: lowercase hex of TokenUpdate's Token).
TOKEN_HEX_LENGTH = 64
MAX_TOPIC_LENGTH = 255
MAX_COLLAPSE_ID_BYTES = 64
#: The push types Apple documents; an MDM push certificate may send only ``mdm``.
PUSH_TYPES = frozenset(
    {
        "alert",
        "background",
        "complication",
        "controls",
        "fileprovider",
        "liveactivity",
        "location",
        "mdm",
        "pushtotalk",
        "voip",
        "widgets",
    }
)
PRIORITIES = frozenset({1, 5, 10})
_APNS_HEADERS = ("apns-id", "apns-topic", "apns-push-type", "apns-priority", "apns-expiration", "apns-collapse-id")
_HEX = re.compile(r"[0-9a-fA-F]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TOPIC = re.compile(r"[A-Za-z0-9._-]+")


class APNsRejection(Exception):
    """A push Apple refuses: the status, the reason in the JSON body, and (410 only) when the token went away."""

    def __init__(self, status: int, reason: str, *, timestamp: datetime | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.timestamp = timestamp

    def body(self) -> bytes:
        payload: dict[str, Any] = {"reason": self.reason}
        if self.timestamp is not None:
            payload["timestamp"] = int(self.timestamp.timestamp() * 1000)
        return json.dumps(payload, separators=(",", ":")).encode("ascii")


@dataclass(frozen=True)
class RawRequest:
    """One HTTP/2 request as it arrived: its header block (bytes, unvalidated) and its body."""

    headers: Sequence[tuple[bytes, bytes]]
    body: bytes
    #: The body passed :data:`MAX_PAYLOAD_BYTES`; ``body`` then holds only its beginning.
    too_large: bool = False

    def values(self, name: str) -> list[str | None]:
        """Every value of header ``name``; None for a value that is not printable ASCII."""
        found: list[str | None] = []
        for key, value in self.headers:
            if key.lower() == name.encode("ascii"):
                try:
                    text = value.decode("ascii")
                except UnicodeDecodeError:
                    found.append(None)
                    continue
                found.append(text if text.isprintable() else None)
        return found

    def header(self, name: str) -> str | None:
        values = self.values(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Push:
    """A push that passed every check of its own: to be matched against the token's registration."""

    token: str
    topic: str
    apns_id: str
    push_type: str | None
    priority: int
    expires_at: datetime | None
    payload: bytes


def request_id(request: RawRequest) -> str:
    """The ``apns-id`` to answer with: the client's, when it is a UUID, else a new one (Apple generates it)."""
    given = request.header("apns-id")
    if given is not None and _UUID.fullmatch(given):
        return given
    return str(uuid.uuid4())


def check_route(request: RawRequest) -> str:
    """The token in the path of a ``POST /3/device/{token}``; 405 for another method, 404 for another path."""
    method = request.header(":method")
    path = request.header(":path") or ""
    if not path.startswith(PUSH_PATH):
        raise APNsRejection(404, "BadPath")
    if method != "POST":
        raise APNsRejection(405, "MethodNotAllowed")
    token = path.removeprefix(PUSH_PATH)
    if not token:
        raise APNsRejection(400, "MissingDeviceToken")
    return token


def _topic(request: RawRequest, certificate_topic: str) -> str:
    """An MDM push certificate carries one topic, so Apple accepts a push without ``apns-topic`` (nanomdm sends
    none); a topic that is given must be that one."""
    given = request.header("apns-topic")
    if given is None and not request.values("apns-topic"):
        return certificate_topic
    if not given or len(given) > MAX_TOPIC_LENGTH or not _TOPIC.fullmatch(given):
        raise APNsRejection(400, "BadTopic")
    if given != certificate_topic:
        raise APNsRejection(400, "TopicDisallowed")
    return given


def _token(raw: str) -> str:
    if len(raw) != TOKEN_HEX_LENGTH or not _HEX.fullmatch(raw):
        raise APNsRejection(400, "BadDeviceToken")
    return raw.lower()


def _push_type(request: RawRequest) -> str | None:
    if not request.values("apns-push-type"):
        return None  # optional for MDM: nanomdm omits it (updates section 4 item 13)
    value = request.header("apns-push-type")
    if value not in PUSH_TYPES or value != "mdm":
        raise APNsRejection(400, "InvalidPushType")
    return value


def _whole_number(value: str | None, *, digits: int) -> int | None:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > digits:
        return None
    return int(value)


def _priority(request: RawRequest) -> int:
    if not request.values("apns-priority"):
        return 10
    priority = _whole_number(request.header("apns-priority"), digits=2)
    if priority not in PRIORITIES:
        raise APNsRejection(400, "BadPriority")
    return priority


def _expiration(request: RawRequest) -> datetime | None:
    """``apns-expiration``: absent or 0 means one delivery attempt and nothing stored."""
    if not request.values("apns-expiration"):
        return None
    seconds = _whole_number(request.header("apns-expiration"), digits=11)
    if seconds is None:
        raise APNsRejection(400, "BadExpirationDate")
    if seconds == 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise APNsRejection(400, "BadExpirationDate") from None


def _check_ids(request: RawRequest) -> None:
    if request.values("apns-id") and not _UUID.fullmatch(request.header("apns-id") or ""):
        raise APNsRejection(400, "BadMessageId")
    if request.values("apns-collapse-id"):
        collapse = request.header("apns-collapse-id")
        if collapse is None or len(collapse.encode("ascii")) > MAX_COLLAPSE_ID_BYTES:
            raise APNsRejection(400, "BadCollapseId")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _payload(request: RawRequest) -> bytes:
    if request.too_large or len(request.body) > MAX_PAYLOAD_BYTES:
        raise APNsRejection(413, "PayloadTooLarge")
    if not request.body.strip():
        raise APNsRejection(400, "PayloadEmpty")
    try:
        value = json.loads(request.body.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        # Apple documents no reason for a body that is not a JSON dictionary; the simulator names it plainly.
        raise APNsRejection(400, "BadPayload")
    return request.body


def check_push(request: RawRequest, *, token: str, certificate_topic: str) -> Push:
    """Every check that needs only the request and the connection's topic; raises :class:`APNsRejection`."""
    if request.too_large:
        raise APNsRejection(413, "PayloadTooLarge")
    for name in _APNS_HEADERS:
        if len(request.values(name)) > 1:
            raise APNsRejection(400, "DuplicateHeaders")
    topic = _topic(request, certificate_topic)
    device_token = _token(token)
    push_type = _push_type(request)
    priority = _priority(request)
    expires_at = _expiration(request)
    _check_ids(request)
    return Push(
        token=device_token,
        topic=topic,
        apns_id=request_id(request),
        push_type=push_type,
        priority=priority,
        expires_at=expires_at,
        payload=_payload(request),
    )
