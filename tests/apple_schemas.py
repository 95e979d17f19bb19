"""Where Apple's YAML schemas are (``../shared/apple-device-management``, read at test time, never copied), and the
Python type each of their plist types reads as."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import pytest
import yaml

from tests.conftest import FIXTURES_DIR

APPLE_SCHEMAS = FIXTURES_DIR.parent / "apple-device-management"
#: A schema key's ``type`` and what ``plistlib`` reads it as (an integer is a valid real).
PLIST_TYPES: dict[str, type | tuple[type, ...]] = {
    "<string>": str,
    "<integer>": int,
    "<boolean>": bool,
    "<array>": list,
    "<dictionary>": dict,
    "<data>": bytes,
    "<date>": datetime,
    "<real>": (float, int),
}


@cache
def apple_commands() -> dict[str, dict[str, Any]]:
    """Apple's schema of each MDM command (``mdm/commands/*.yaml``), by RequestType; skips when they are absent."""
    schemas = APPLE_SCHEMAS / "mdm" / "commands"
    if not schemas.is_dir():
        pytest.skip(f"Apple's schemas {schemas} are not present (the ../shared folder is not checked out here)")
    found = {}
    for path in sorted(schemas.glob("*.yaml")):
        schema = yaml.safe_load(path.read_text())
        found[schema["payload"]["requesttype"]] = schema
    return found
