"""What `pippin devices command` and `pippin commands send` read from the command line: the parameters of a
command (``--param``, ``--payload-file``, ``--profile``), its expiry (``--expires-in``) and the typed confirmation
of a destructive one."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
from pydantic import TypeAdapter, ValidationError

from pippin.cli.files import shown_path
from pippin.errors import InvalidInput

#: A payload file or profile is a few kilobytes; a command is at most what the queue takes.
MAX_PAYLOAD_FILE_BYTES = 1024 * 1024


def _read(path: Path, *, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PAYLOAD_FILE_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a possible file name"
        raise InvalidInput(f"Cannot read {shown_path(path)}: {reason}.", hint=f"Pass the path of the {what}.") from None
    if len(data) > MAX_PAYLOAD_FILE_BYTES:
        raise InvalidInput(f"The {what} is larger than {MAX_PAYLOAD_FILE_BYTES:,} bytes.", hint="Check the file.")
    return data


def parse_payload(params: list[str], payload_file: Path | None, profile: Path | None) -> dict[str, Any]:
    """``KEY=text`` is a string, ``KEY:=json`` a JSON value (true, 5, [..]); a payload file is a JSON object;
    ``--profile`` is InstallProfile's .mobileconfig."""
    if params and payload_file is not None:
        raise InvalidInput("Give --param or --payload-file, not both.")
    payload: dict[str, Any] = {}
    if payload_file is not None:
        data = _read(payload_file, what="payload file")
        try:
            loaded = json.loads(data)
        except (ValueError, RecursionError):
            raise InvalidInput("The payload file is not JSON.", hint='Write an object: {"Message": "..."}') from None
        if not isinstance(loaded, dict):
            raise InvalidInput("The payload file must hold a JSON object of the command's keys.")
        payload.update(loaded)
    for param in params:
        key, is_json, value = _split(param)
        if key in payload:
            raise InvalidInput(f"--param gives {key[:64]!r} twice.")
        if is_json:
            try:
                payload[key] = json.loads(value)
            except (ValueError, RecursionError):
                raise InvalidInput(f"The value of {key[:64]} after := is not JSON.", hint="e.g. Flag:=true") from None
        else:
            payload[key] = value
    if profile is not None:
        payload["Payload"] = _read(profile, what="profile")
    return payload


def _split(param: str) -> tuple[str, bool, str]:
    key, sep, value = param.partition("=")
    if not sep or not key.rstrip(":"):
        raise InvalidInput(
            f"--param {param[:64]!r} is not KEY=VALUE.", hint="Text: Message=Hello; other values: Flag:=true"
        )
    return (key[:-1], True, value) if key.endswith(":") else (key, False, value)


def confirm(expected: str, *, what: str, yes: bool) -> None:
    """Ask for ``expected`` to be typed back before a destructive command, unless ``--yes``."""
    if yes:
        return
    typed = typer.prompt(f"{what} Type {expected} to confirm", default="", show_default=False)
    if typed.strip() != expected:
        raise InvalidInput("Not confirmed; nothing was sent.", hint="Type it exactly, or pass --yes.")


_DURATION = TypeAdapter(timedelta)


def parse_expiry(text: str | None) -> timedelta | None:
    """``--expires-in`` as a duration (ISO 8601 such as ``PT1H``, or seconds), as the API's ``expires_in`` reads it;
    the queue checks its bounds."""
    if text is None:
        return None
    try:
        return _DURATION.validate_python(text.strip()[:64])
    except ValidationError:
        raise typer.BadParameter(
            f"{text[:64]!r} is not a duration: give ISO 8601 (PT30M, P1D) or seconds (1800).",
            param_hint="--expires-in",
        ) from None
