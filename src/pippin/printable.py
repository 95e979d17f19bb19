"""Text made safe to show on a terminal or in a log line: control characters become visible escapes.

Device data comes from Apple (asset tags, descriptions), names and paths from anyone who can send a request;
printed raw, an ESC starts a terminal escape sequence (retitling the window, hiding lines, faking output), a
NUL or a newline forges or truncates a log line, and a bidi override reorders what the reader sees.
:func:`printable` shows each such character as the escape a Python string literal would use, so the reader
sees that it is there and the terminal never acts on it. JSON output needs none of this: ``json.dumps``
escapes control characters itself.
"""

from __future__ import annotations

import unicodedata

#: Characters shown as escapes: controls (C0, DEL, C1), invisible format characters (bidi overrides,
#: zero-width spaces), line and paragraph separators, and lone surrogates (undecodable bytes in arguments).
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every control, format and separator character shown as an escape (ESC as ``\\x1b``).

    Everything else, any script, emoji and accented letters included, is left as it is; a string that needs no
    escaping (the usual case) is returned unchanged without being copied.
    """
    if text.isprintable():
        return text
    return "".join(
        _escape(char) if not char.isprintable() and unicodedata.category(char) in _ESCAPED_CATEGORIES else char
        for char in text
    )
