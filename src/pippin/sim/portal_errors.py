"""The one error the Business Manager portal raises: an HTTP status, a stable code, and what went wrong.

The portal is the simulator's own API (unlike the DEP API, which keeps Apple's bare uppercase codes), so its
errors are JSON objects ``{"error": code, "detail": message}``, plus ``problems`` when individual lines or
serials of a bulk request were wrong. Raising one always means nothing was changed.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

#: Largest request body the portal reads: room for 100,000 serials as JSON or CSV, far below memory trouble.
MAX_BODY_BYTES = 8 * 1024 * 1024


class PortalError(Exception):
    """A refused portal request; rendered as ``{"error", "detail"[, "problems"]}`` with ``status``."""

    def __init__(self, status: int, code: str, detail: str, *, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.problems = problems

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "detail": self.detail}
        if self.problems is not None:
            body["problems"] = self.problems
        return body


def invalid(code: str, detail: str, *, problems: list[dict[str, Any]] | None = None) -> PortalError:
    """A 400: the request itself is wrong."""
    return PortalError(400, code, detail, problems=problems)


def not_found(code: str, detail: str) -> PortalError:
    """A 404: the named server, device or profile does not exist."""
    return PortalError(404, code, detail)


async def read_capped_body(request: Request) -> bytes:
    """Read the whole body, refusing (413) one past :data:`MAX_BODY_BYTES` without reading the rest."""
    declared = request.headers.get("content-length")
    too_large = PortalError(413, "body_too_large", f"Request bodies are limited to {MAX_BODY_BYTES // 2**20} MiB.")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # later readers (FastAPI's body and form parsing) reuse what was read here
    return body
