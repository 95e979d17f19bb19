"""How the CLI talks to people: Rich consoles for output and errors, and JSON for scripts.

Everything the consoles print shows control characters as escapes (:func:`pippin.printable.printable`):
Apple's device data and every name are data, and an ESC in them must never reach the terminal as one. Table
cells escape their text up front with :func:`cell`, so the columns are measured on what is shown; the consoles
themselves escape whatever else reaches them, as a last line of defence.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Text

from pippin.printable import printable


class EscapingConsole(Console):
    """A Rich console that never lets a control character of the printed text reach the terminal.

    Rich's own control segments (cursor moves, styles) pass; in the text, every line stays a line and every
    other control or format character is shown as an escape.
    """

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            text = segment.text
            if segment.control or text.isprintable() or text == "\n":
                yield segment
            else:
                shown = "\n".join(printable(line) for line in text.split("\n"))
                yield Segment(shown, segment.style, segment.control)


stdout = EscapingConsole(highlight=False, soft_wrap=True)
stderr = EscapingConsole(stderr=True, highlight=False, soft_wrap=True)


def cell(value: object, *, missing: str = "-", style: str = "") -> Text:
    """A table cell showing ``value`` as plain text (never markup), control characters escaped."""
    shown = missing if value is None or value == "" else str(value)
    return Text(printable(shown), style=style)


def print_json(value: BaseModel | list[BaseModel] | dict[str, Any] | list[dict[str, Any]]) -> None:
    """Print a schema (or a list of them) as JSON with the same keys the REST API uses."""
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json")
    elif isinstance(value, list):
        data = [item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in value]
    else:
        data = value
    # print() rather than Rich: JSON must reach pipes byte for byte, unwrapped and uncoloured; json.dumps
    # already escapes every control character.
    print(json.dumps(data, indent=2, default=str))
