"""api/json_body.py: a JSON object that gives a key twice is refused, located at the key; nothing else is."""

from __future__ import annotations

import pytest
from fastapi.exceptions import RequestValidationError

from pippin.api.json_body import is_json, refuse_repeated_keys


@pytest.mark.parametrize(
    ("body", "location"),
    [
        (b'{"a": 1, "a": 1}', ("body", "a")),
        (b'{"a": {"b": 1, "c": 2, "b": 3}}', ("body", "a", "b")),
        (b'[0, [1, {"x": 1, "x": 2}]]', ("body", 1, 1, "x")),
        (b'{"first": {"k": 1, "k": 2}, "second": {"j": 1, "j": 2}}', ("body", "first", "k")),
        ('{"\u00e9": 1, "\u00e9": 2}'.encode("utf-16"), ("body", "\u00e9")),
    ],
)
def test_a_repeated_key_is_refused_where_it_is(body: bytes, location: tuple[object, ...]) -> None:
    with pytest.raises(RequestValidationError) as refused:
        refuse_repeated_keys(body)
    (error,) = refused.value.errors()
    assert error["loc"] == location and "twice" in error["msg"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": {"k": 1}, "b": {"k": 2}}',  # the same key in two objects
        b'[{"k": 1}, {"k": 2}]',
        b'{"a": 1, "A": 2}',  # keys are case-sensitive
        b'"just a string"',
        b"{not json",  # left to FastAPI, which refuses it in the same shape
        b"\xff\xfe\xfd",
    ],
)
def test_anything_else_is_left_alone(body: bytes) -> None:
    refuse_repeated_keys(body)


@pytest.mark.parametrize(
    ("content_type", "read_as_json"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("application/merge-patch+json", True),
        ("APPLICATION/JSON", True),
        ("text/json", False),
        ("multipart/form-data; boundary=x", False),
        (None, False),
        ("", False),
    ],
)
def test_bodies_are_checked_exactly_when_fastapi_reads_them_as_json(
    content_type: str | None, read_as_json: bool
) -> None:
    assert is_json(content_type) is read_as_json
