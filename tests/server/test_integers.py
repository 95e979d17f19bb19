"""server/integers.py: WHOLE_NUMBER takes plain digits or an integer, within the field's bounds and the
database's, and names the rule it refuses by."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from pippin.server.integers import MAX_DB_INTEGER, MIN_DB_INTEGER, WHOLE_NUMBER


class Page(BaseModel):
    limit: Annotated[int, Field(ge=1, le=500), WHOLE_NUMBER] = 20
    offset: Annotated[int | None, WHOLE_NUMBER] = None


@pytest.mark.parametrize(("raw", "taken"), [("5", 5), ("500", 500), (7, 7), ("1", 1)])
def test_plain_digits_and_integers_within_the_bounds_are_taken(raw: Any, taken: int) -> None:
    assert Page.model_validate({"limit": raw}).limit == taken


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("+5", "int_plain_decimal"),
        ("05", "int_plain_decimal"),
        ("5.0", "int_plain_decimal"),
        (" 5", "int_plain_decimal"),
        ("\u0665", "int_plain_decimal"),
        (True, "int_type"),
        (5.0, "int_type"),
        ([5], "int_type"),
        ("501", "less_than_equal"),  # the field's own bound speaks first
        ("0", "greater_than_equal"),
        ("9" * 30, "int_out_of_range"),
    ],
)
def test_anything_else_is_refused_by_its_rule(raw: Any, error: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Page.model_validate({"limit": raw})
    assert [item["type"] for item in refused.value.errors()] == [error]


def test_without_bounds_of_its_own_a_field_is_bounded_by_the_database() -> None:
    assert Page.model_validate({"offset": str(MAX_DB_INTEGER)}).offset == MAX_DB_INTEGER
    assert Page.model_validate_json(f'{{"offset": {MIN_DB_INTEGER}}}').offset == MIN_DB_INTEGER
    assert Page.model_validate({"offset": None}).offset is None
    for raw in (str(MAX_DB_INTEGER + 1), MAX_DB_INTEGER + 1, MIN_DB_INTEGER - 1, "9223372036854775808"):
        with pytest.raises(ValidationError, match="int_out_of_range"):
            Page.model_validate({"offset": raw})


def test_json_numbers_with_a_fraction_or_booleans_are_refused() -> None:
    for document in ('{"limit": 5.0}', '{"limit": true}', '{"offset": 1e3}'):
        with pytest.raises(ValidationError):
            Page.model_validate_json(document)
    assert Page.model_validate_json('{"limit": 5}').limit == 5
