"""What every test of a running Pippin shares: a server over the test settings, and real HTTP on loopback.

:func:`build_server` is ``pippin serve``'s server with the test's outside clients injected (by default a pool
of pre-made RSA keys instead of fresh ones: these tests check translation, not key generation).
:func:`serve_in_thread` serves any ASGI app (a Pippin server, the Apple simulator) on a free loopback port for
the length of a block, for tests that need a real client such as a browser or Pippin's own DEP client.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from pippin.admin import passwords
from pippin.config import Settings
from pippin.server.app import create_server
from pippin.server.resources import ServerResources
from tests.crypto.openssl_tokens import pooled_key_generator

#: How long a server in a thread may take to start before the test fails (generous: CI is a busy 2-core box).
START_TIMEOUT_SECONDS = 30


def build_server(settings: Settings, **clients: Any) -> Starlette:
    """``create_server(settings)`` with pooled keys unless ``clients`` says otherwise (see the module docstring)."""
    clients.setdefault("generate_key", pooled_key_generator())
    return create_server(settings, **clients)


def resources_of(server: Starlette) -> ServerResources:
    resources = server.state.resources
    assert isinstance(resources, ServerResources)
    return resources


def mounted_app(server: Starlette, path: str) -> FastAPI:
    """The sub-app the server mounts at ``path``: "" for the API, "/console", "/mdm"."""
    for route in server.routes:
        if isinstance(route, Mount) and route.path == path and isinstance(route.app, FastAPI):
            return route.app
    raise LookupError(f"the server mounts no sub-app at {path!r}")


def sqlite_copy(tmp_path: Path, template: Path) -> str:
    """The URL of a private copy of the migrated SQLite template, for tests that check translation only."""
    path = tmp_path / "pippin.db"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


def cheap_argon2() -> passwords.Argon2Passwords:
    """Argon2 at its cheapest: real hashes, made fast."""
    return passwords.Argon2Passwords(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


def quick_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 for the CLI and for servers built after this: tests of pages check pages, not the hash's cost
    (tests/admin does)."""
    monkeypatch.setattr(passwords, "DEFAULT_PASSWORDS", cheap_argon2())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_in_thread(app: ASGIApp, *, lifespan: Literal["on", "off"] = "on", port: int | None = None) -> Iterator[str]:
    """Serve ``app`` on a free loopback port (or ``port``) until the block ends; yields its base URL.

    ``lifespan="on"`` runs the app's startup and shutdown (a Pippin server's jobs and engine disposal). ``port``
    is for a server whose settings must name its own address before it starts (``PIPPIN_SERVER_URL``).
    """
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"{type(app).__name__} did not start on port {port}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_SECONDS)
