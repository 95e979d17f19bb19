"""Templates and the page context every console page shares (the admin, the CSRF token, a one-time notice)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from pippin import __version__
from pippin.console.notice import clear_notice, leave_notice, read_notice
from pippin.inventory.state import STATE_LABELS, DeviceState

TEMPLATES_DIR = Path(__file__).parent / "templates"

# Jinja2Templates turns autoescape on for .html: every value shown is escaped unless a template says otherwise.
templates = Jinja2Templates(directory=TEMPLATES_DIR)


def _when(value: datetime | None, missing: str = "-") -> str:
    if value is None:
        return missing
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _state_label(state: str | None) -> str:
    if state is None:
        return "-"
    return STATE_LABELS[DeviceState(state)] if state in STATE_LABELS else state


templates.env.filters["when"] = _when
templates.env.filters["state_label"] = _state_label
templates.env.globals["version"] = __version__


def render(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    """A page with the shared context; a notice left by the previous redirect is shown once, then cleared."""
    page = {
        "signed_in": getattr(request.state, "signed_in", None),
        "notice": read_notice(request),
        "path": request.url.path,
        **context,
    }
    response = templates.TemplateResponse(request, template, page, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    clear_notice(request, response)
    return response


def redirect(request: Request, path: str, *, notice: str | None = None) -> Response:
    """303 to a console page after a form, with a short message to show there (POST, redirect, GET)."""
    response = RedirectResponse(path, status_code=303)
    if notice:
        leave_notice(request, response, notice)
    return response
