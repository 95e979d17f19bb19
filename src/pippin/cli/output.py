"""How the CLI talks to people: Rich consoles for output and errors, and JSON for scripts."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from rich.console import Console

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(value: BaseModel | list[BaseModel] | dict[str, Any] | list[dict[str, Any]]) -> None:
    """Print a schema (or a list of them) as JSON with the same keys the REST API uses."""
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json")
    elif isinstance(value, list):
        data = [item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in value]
    else:
        data = value
    # print() rather than Rich: JSON must reach pipes byte for byte, unwrapped and uncoloured.
    print(json.dumps(data, indent=2, default=str))
