"""The one-time notice a console form leaves for the page it redirects to ("Profile Équipe is saved.").

It travels in a cookie that lives a minute and is cleared once shown. A cookie value must be plain ASCII
(Starlette writes headers in Latin-1, and browsers mangle the rest), while a notice names things in any script,
so the cookie holds the text's UTF-8 in base64url. It is signed too (HMAC-SHA256/128 under a key derived from the
master key, like ``dep/enrollment_reference.py``): anyone who can set a cookie for this host (another site on a
sibling subdomain, a script on plain HTTP) could otherwise make the console say whatever they like under its own
banner ("your token was revoked, upload it at ..."). A notice Pippin did not write is dropped, never shown.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from hashlib import sha256

from fastapi import Request, Response

from pippin.crypto.secrets import SecretBox
from pippin.server.deps import server_resources
from pippin.server.proxies import came_over_https

NOTICE_COOKIE = "pippin_notice"
MAX_NOTICE_CHARS = 300
_PATH = "/console"
_PURPOSE = "console-notice"
_MAC_BYTES = 16
# Four UTF-8 bytes at most per character, in base64: longer values were never written here.
_MAX_COOKIE_CHARS = (_MAC_BYTES + 4 * MAX_NOTICE_CHARS) * 4 // 3 + 4


def _mac(box: SecretBox, text: bytes) -> bytes:
    return hmac.new(box.derive_key(_PURPOSE), text, sha256).digest()[:_MAC_BYTES]


def seal(box: SecretBox, notice: str) -> str:
    """The cookie value carrying ``notice`` (clipped to :data:`MAX_NOTICE_CHARS`): URL-safe ASCII."""
    text = notice[:MAX_NOTICE_CHARS].encode("utf-8", errors="replace")
    return base64.urlsafe_b64encode(_mac(box, text) + text).rstrip(b"=").decode("ascii")


def unseal(box: SecretBox, value: str) -> str | None:
    """The notice ``value`` carries, or ``None`` for any value :func:`seal` did not make with this box."""
    if not value or len(value) > _MAX_COOKIE_CHARS or not value.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != value:
        return None  # other spare bits in the last character: not the text Pippin wrote
    mac, text = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
    if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, _mac(box, text)):
        return None
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        return None


def leave_notice(request: Request, response: Response, notice: str) -> None:
    """Have the next console page show ``notice`` once."""
    response.set_cookie(
        NOTICE_COOKIE,
        seal(server_resources(request).secret_box, notice),
        max_age=60,
        path=_PATH,
        httponly=True,
        samesite="lax",
        secure=came_over_https(request),
    )


def read_notice(request: Request) -> str | None:
    """The notice the previous redirect left, if it is one Pippin wrote."""
    value = request.cookies.get(NOTICE_COOKIE)
    return None if value is None else unseal(server_resources(request).secret_box, value)


def clear_notice(request: Request, response: Response) -> None:
    """Once a page is drawn, its notice (shown, or dropped as not Pippin's) is gone."""
    if NOTICE_COOKIE in request.cookies:
        response.delete_cookie(NOTICE_COOKIE, path=_PATH)
