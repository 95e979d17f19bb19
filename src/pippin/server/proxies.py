"""Who is asking, behind a reverse proxy: forwarded headers believed only from the proxies named in settings.

A proxy that terminates TLS tells Pippin the client's address (``X-Forwarded-For``) and that the request came
over HTTPS (``X-Forwarded-Proto``). Anyone can send those headers, so :class:`TrustedProxyHeaders` believes
them only when the direct peer is in ``PIPPIN_TRUSTED_PROXIES``; from any other peer, loopback included, they
are ignored. Believed, they replace the request's client and scheme for everything below, so the audit log's
address (:func:`client_address`) and the cookies' ``Secure`` flag (:func:`came_over_https`) follow them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from pippin.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Scope key naming the trusted proxy a request came through; absent when the peer is not one.
TRUSTED_PROXY_KEY = "pippin.trusted_proxy"


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it (``192.0.2.7``, ``192.0.2.7:5123``, ``[2001:db8::1]:443``), or None."""
    candidate = text.strip()
    if candidate.startswith("["):
        candidate = candidate[1:].split("]", 1)[0]
    elif candidate.count(":") == 1:
        candidate = candidate.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is the IPv4 client.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxyHeaders:
    """Takes the client's address and scheme from a trusted proxy's forwarded headers; ignores them otherwise.

    ``X-Forwarded-For`` lists the addresses each proxy saw, the nearest last; read from the right, every address
    that is itself a trusted proxy is skipped and the first other one is the client. An entry that is not an
    address ends the walk: the nearest address known to be real (a trusted proxy) is recorded instead, never
    the malformed text. ``X-Forwarded-Proto`` counts only as ``http`` or ``https``, as the nearest proxy set it.
    """

    def __init__(self, app: ASGIApp, *, trusted: Sequence[IPNetwork]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    def is_trusted(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.trusted)

    def forwarded_client(self, peer: IPAddress, forwarded_for: list[str]) -> IPAddress:
        client = peer
        hops = [hop for header in forwarded_for for hop in header.split(",")]
        for hop in reversed(hops):
            if not self.is_trusted(client):
                break
            address = parse_address(hop)
            if address is None:
                break
            client = address
        return client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.trusted:
            await self.app(scope, receive, send)
            return
        peer_host, peer_port = scope.get("client") or (None, 0)
        peer = parse_address(peer_host) if peer_host else None
        if peer is None or not self.is_trusted(peer):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        scope = dict(scope)
        scope[TRUSTED_PROXY_KEY] = str(peer)
        forwarded_for = headers.getlist("x-forwarded-for")
        if forwarded_for:
            scope["client"] = (str(self.forwarded_client(peer, forwarded_for)), peer_port)
        protocols = [value.strip().lower() for value in ",".join(headers.getlist("x-forwarded-proto")).split(",")]
        if protocols[-1] in ("http", "https"):
            secure = protocols[-1] == "https"
            if scope["type"] == "websocket":
                scope["scheme"] = "wss" if secure else "ws"
            else:
                scope["scheme"] = protocols[-1]
        await self.app(scope, receive, send)


def client_address(connection: HTTPConnection) -> str | None:
    """The client's address for the audit log and sessions: the peer's, or the one a trusted proxy forwarded."""
    return connection.client.host if connection.client else None


def trusted_proxy_of(connection: HTTPConnection) -> str | None:
    """The trusted proxy this request came through, or None: what any other header a proxy adds (a client
    certificate it verified, for the device endpoints) must be checked against before it is believed."""
    proxy = connection.scope.get(TRUSTED_PROXY_KEY)
    return proxy if isinstance(proxy, str) else None


def came_over_https(connection: HTTPConnection) -> bool:
    """Whether the client's request used HTTPS, directly or through a trusted proxy: cookies are then Secure."""
    return connection.url.scheme in ("https", "wss")
