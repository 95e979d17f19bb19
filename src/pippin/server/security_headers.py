"""The browser-hardening headers every answer of the server carries, with a content policy per area.

Every answer gets ``X-Content-Type-Options: nosniff`` (a device's plist or an API's JSON is never run as a
script), ``X-Frame-Options: DENY`` and ``frame-ancestors 'none'`` (no page of Pippin can be framed to trick a
click), and ``Referrer-Policy: no-referrer`` (enrollment references and console addresses never leak to other
sites). The Content-Security-Policy depends on what the area serves: the console is pages with no script at
all, the API docs run Swagger UI from Pippin's own files, and everything else (JSON, plists, plain text) is
never rendered, so it may load nothing. A header a route set itself is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: JSON, plists and plain text: nothing to load, nothing to run.
NOTHING_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: The console: server-rendered pages with one stylesheet, forms posting to itself, no script of any kind.
CONSOLE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
#: Swagger UI from Pippin's own files (it styles elements through the DOM, which the policy allows, so no
#: 'unsafe-inline' is needed: tests/browser checks it renders with no violation); its icons are data: URIs;
#: it fetches the OpenAPI description and sends the requests an admin tries to the same origin.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

_ALWAYS = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
)


class SecurityHeaders:
    """Adds the hardening headers to every HTTP answer; ``policies`` maps path prefixes to a CSP.

    The first prefix that ``scope["path"]`` starts with gives the Content-Security-Policy; a path matching none
    gets ``default_policy``.
    """

    def __init__(
        self, app: ASGIApp, *, policies: Sequence[tuple[str, str]] = (), default_policy: str = NOTHING_POLICY
    ) -> None:
        self.app = app
        self.policies = tuple(policies)
        self.default_policy = default_policy

    def policy_for(self, path: str) -> str:
        for prefix, policy in self.policies:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return policy
        return self.default_policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.policy_for(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in (*_ALWAYS, ("content-security-policy", policy)):
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
