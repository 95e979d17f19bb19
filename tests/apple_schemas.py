"""Where Apple's YAML schemas are (``../shared/apple-device-management``, read at test time, never copied), and the
Python type each of their plist types reads as."""

from __future__ import annotations

from datetime import datetime

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
