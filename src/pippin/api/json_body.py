"""JSON request bodies read one way only: an object that gives a key twice is refused, at any depth.

Python's ``json`` (and so FastAPI) keeps the last of repeated keys, so ``{"name": "a", "name": "b"}`` would
mean "b" to Pippin and "a" to a proxy, a log or a client library that keeps the first. Every route of
:class:`StrictJSONRoute` refuses such a body with a 422 whose location names the key (``body.name``,
``body.items.1.name``), before FastAPI validates it. Bodies that are not JSON at all are left to FastAPI,
which refuses them in the same shape.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

_MESSAGE = "A key appears twice in one JSON object; give each key once."


class _RepeatedKey:
    """Stands in for a JSON object that gave ``key`` twice, so the walk below can say where it was."""

    def __init__(self, key: str) -> None:
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _RepeatedKey:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            return _RepeatedKey(key)
        found[key] = value
    return found


def _repeated_key_path(value: Any, path: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    """Where the first object with a repeated key is, in document order, ending with that key."""
    if isinstance(value, _RepeatedKey):
        return (*path, value.key)
    children: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found = _repeated_key_path(child, (*path, key))
        if found is not None:
            return found
    return None


def refuse_repeated_keys(body: bytes) -> None:
    """Raise FastAPI's validation error, located at the key, if ``body`` is JSON that repeats a key.

    A body that does not parse is let through: FastAPI's own parse refuses it with its own message.
    """
    try:
        document = json.loads(body, object_pairs_hook=_object)
    except ValueError:  # not JSON, or not UTF-8/16/32 (UnicodeDecodeError is a ValueError)
        return
    path = _repeated_key_path(document, ("body",))
    if path is not None:
        raise RequestValidationError([{"type": "json_repeated_key", "loc": path, "msg": _MESSAGE, "input": None}])


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of this content type as JSON (``application/json`` or ``*/*+json``)."""
    if not content_type:
        return False  # FastAPI's strict content type: a body without one is not read as JSON
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is refused if any object in it repeats a key (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle  # the route reads no body

        async def refuse_repeated_keys_then_handle(request: Request) -> Response:
            if is_json(request.headers.get("content-type")):
                # Starlette keeps the body it read, so FastAPI's own parse below reads the same bytes again.
                refuse_repeated_keys(await request.body())
            return await handle(request)

        return refuse_repeated_keys_then_handle
