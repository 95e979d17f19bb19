"""What every posted console form must be before a route reads it: UTF-8 text, each field sent once.

Starlette reads forms leniently: a urlencoded ``%FF`` becomes U+FFFD, a raw byte past ASCII or a multipart field
that is not UTF-8 is read as Latin-1 (``ÿ``), and a field sent twice keeps its last value without a word. A name
saved so would not be what the admin typed, and a doubled field is a form no console page sends. So a posted
form is checked first, by :class:`CheckedFormRoute`: its fields (names and values, file contents aside) must be
UTF-8, a urlencoded body ASCII (browsers escape the rest), its address's escapes UTF-8 too, and a field comes
once unless its form is a list of switches of one name (:data:`REPEATABLE`). Each refusal names the field and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import python_multipart
from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from python_multipart.multipart import parse_options_header

from pippin.errors import InvalidInput

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

#: Fields a console form sends once per ticked switch (the Setup Assistant panes of a profile).
REPEATABLE = frozenset({"show_pane"})
_HINT = "Reload the console page and send the form from it again."


def _shown(name: bytes | str) -> str:
    text = name.decode("utf-8", errors="replace") if isinstance(name, bytes) else name
    return repr(text[:40])


def _not_utf8(name: bytes | str) -> InvalidInput:
    return InvalidInput(
        f"The field {_shown(name)} holds bytes that are not UTF-8 text (such as %FF); nothing was changed.",
        hint=_HINT,
    )


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check_urlencoded(body: bytes) -> None:
    for pair in body.split(b"&"):
        name, _, value = pair.partition(b"=")
        raw_name = unquote_to_bytes(name.replace(b"+", b" "))
        if not pair.isascii() or not _utf8(raw_name) or not _utf8(unquote_to_bytes(value.replace(b"+", b" "))):
            raise _not_utf8(raw_name)


class _Parts:
    """The name, whether it is a file, and the bytes of each part of a multipart body."""

    def __init__(self) -> None:
        self.found: list[tuple[bytes, bool, bytes]] = []
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._data = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_text,
            "on_header_end": self._header_end,
            "on_part_data": self._part_data,
            "on_part_end": self._end,
        }

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name.extend(data[start:end])

    def _header_text(self, data: bytes, start: int, end: int) -> None:
        self._header_value.extend(data[start:end])

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._data.extend(data[start:end])

    def _begin(self) -> None:
        self._disposition = b""
        self._data = bytearray()

    def _header_end(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name = bytearray()
        self._header_value = bytearray()

    def _end(self) -> None:
        _, options = parse_options_header(self._disposition)
        self.found.append((options.get(b"name", b""), b"filename" in options, bytes(self._data)))


def _check_multipart(body: bytes, boundary: bytes) -> None:
    parts = _Parts()
    parser = python_multipart.MultipartParser(boundary, parts.callbacks())
    try:
        parser.write(body)
        parser.finalize()
    except python_multipart.exceptions.MultipartParseError:
        return  # Starlette's parser refuses it too, with its own page
    for name, is_file, data in parts.found:
        if not _utf8(name) or (not is_file and not _utf8(data)):
            raise _not_utf8(name)


def _check_address(request: Request) -> None:
    raw_path = request.scope.get("raw_path")
    if isinstance(raw_path, bytes) and not _utf8(unquote_to_bytes(raw_path)):
        shown = [name for name, value in request.path_params.items() if "\ufffd" in str(value)]
        what = f"The {shown[0]} in this page's address" if shown else "This page's address"
        raise InvalidInput(
            f"{what} holds bytes that are not UTF-8 text (such as %FF); nothing was changed.",
            hint="Follow the console's own links, which name everything in UTF-8.",
        )


async def check_posted_form(request: Request) -> None:
    """Raise :class:`InvalidInput` naming the field when a posted form is not UTF-8 or sends a field twice."""
    _check_address(request)
    if request.method != "POST":
        return
    body = await request.body()  # kept by the request: the form is parsed from it next
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"application/x-www-form-urlencoded":
        _check_urlencoded(body)
    elif content_type == b"multipart/form-data" and b"boundary" in options:
        _check_multipart(body, options[b"boundary"])
    if content_type not in (b"application/x-www-form-urlencoded", b"multipart/form-data"):
        return
    form = await request.form()
    for name in set(form.keys()):
        count = len(form.getlist(name))
        if count > 1 and name not in REPEATABLE:
            await form.close()  # the route that would have closed its files is not reached
            raise InvalidInput(
                f"The field {_shown(name)} was sent {count} times; a console form sends it once. Nothing was changed.",
                hint=_HINT,
            )


class CheckedFormRoute(APIRoute):
    """A console route whose posted form is checked by :func:`check_posted_form` before anything reads it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def check_then_handle(request: Request) -> Response:
            await check_posted_form(request)
            return await handle(request)

        return check_then_handle
