"""A request path from anyone on the network reaches the text log with its control characters escaped."""

from __future__ import annotations

import io
import sys

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette

from pippin.logs import configure_logging


@pytest.mark.parametrize(
    "path", ["/api/v1/devices/%1B%5B2J%00x%E2%80%AEforged", "/api/v1/profiles/%1B%5B2J%00x%E2%80%AEforged"]
)
def test_unauthenticated_paths_are_logged_escaped(
    server: Starlette, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    configure_logging("INFO", "text")
    with TestClient(server, raise_server_exceptions=False) as client:
        answer = client.get(path)
    assert answer.status_code < 500
    log = captured.getvalue()
    assert "\\x1b[2J\\x00x\\u202eforged" in log, log
    assert "\x1b" not in log and "\x00" not in log and "\u202e" not in log
