"""`pippin serve`: the server (REST API, console, device endpoints) and the scheduled DEP syncs on one HTTP port."""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from typing import TYPE_CHECKING, Annotated

import typer

from pippin.cli.context import cli_context
from pippin.errors import InvalidInput, Unavailable

if TYPE_CHECKING:
    from starlette.applications import Starlette

logger = logging.getLogger("pippin.serve")

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


def validate_host(host: str) -> str:
    """An IP address or a DNS name to listen on; anything else is refused before binding."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise InvalidInput(
                f"{host[:100]!r} is not an address to listen on.",
                hint="Pass --host 127.0.0.1 (this machine only), 0.0.0.0 (every IPv4 interface) or a host name.",
            ) from None
    return host


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port or an unknown address is one clear error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise InvalidInput(f"Cannot listen on {host}: {exc.strerror or exc}.", hint="Check --host.") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise Unavailable(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}.",
            hint="Another program may be using the port: choose another with --port, or stop that program.",
        ) from exc
    return sock


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 for every interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 8000,
) -> None:
    """Serve the REST API (/api/v1, docs at /api/docs) and the console (/console); run the scheduled DEP syncs."""
    # Imported here, not at the top: every other `pippin` command starts faster without the web stack.
    from pippin.server.app import create_server
    from pippin.server.jobs import periodic_jobs

    validate_host(host)
    settings = cli_context(ctx).settings
    app = create_server(settings, jobs=[periodic_jobs])
    try:
        _listen_and_serve(app, host=host, port=port, log_level=settings.log_level)
    finally:
        # The lifespan disposes the engine once the server ran; one that never got so far (a taken port) is
        # disposed here, and disposing twice is harmless.
        app.state.resources.engine.dispose()


def _listen_and_serve(app: Starlette, *, host: str, port: int, log_level: str) -> None:
    import uvicorn

    sock = bind(host, port)
    shown_host = f"[{host}]" if ":" in host else host
    logger.info(
        "pippin serving",
        extra={"fields": {"url": f"http://{shown_host}:{port}", "docs": f"http://{shown_host}:{port}/api/docs"}},
    )
    config = uvicorn.Config(
        app,
        log_level=log_level.lower(),
        server_header=False,
        # Pippin's own handlers log requests that fail; uvicorn's access lines would repeat every success.
        access_log=False,
        # Its lines go through Pippin's handler (logs.configure_logging), in PIPPIN_LOG_FORMAT and escaped.
        log_config=None,
        # Forwarded headers are the server's to judge, against PIPPIN_TRUSTED_PROXIES (server/proxies.py);
        # uvicorn's own handling would believe any loopback peer.
        proxy_headers=False,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
