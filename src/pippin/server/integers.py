"""Whole numbers as every web sub-app takes them: plain decimal digits, within what the database holds.

Pydantic on its own reads ``+5``, `` 5``, ``5.0``, ``05`` and ``5_0`` as numbers, and hands the database any
size of integer (``9223372036854775808`` fails inside the driver, a 500). A parameter marked with
:data:`WHOLE_NUMBER` takes only text of the digits ``0``-``9`` with no sign, space or leading zero (as a query,
a path or a form sends it), or an integer itself (a JSON number without a fraction; never ``true`` or ``5.0``),
and refuses any value an ``Integer`` column
cannot hold, naming the field like any other validation error::

    limit: Annotated[int, Query(ge=1, le=MAX_PAGE), WHOLE_NUMBER] = 20

It goes last, after ``Query``/``Form``/``Field``: the bounds before it stay part of the type, so OpenAPI shows
them as ``minimum``/``maximum`` and they are checked first, with their own message.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError

#: The range of an ``Integer`` column on PostgreSQL (4 bytes); SQLite's hold 8 bytes, so this bounds both.
MIN_DB_INTEGER = -(2**31)
MAX_DB_INTEGER = 2**31 - 1

# ASCII digits only (``\d`` would take other scripts' digits), and no leading zero: one way to write a number.
_PLAIN_DECIMAL = re.compile(r"0|[1-9][0-9]*")
# Longer strings are far out of range; refusing them unread keeps int() off megabytes of digits.
_MAX_DIGITS = 20


def _out_of_range(number: int | None) -> PydanticCustomError:
    if number is not None and number < MIN_DB_INTEGER:
        return PydanticCustomError("int_out_of_range", "Input should be at least {min}", {"min": MIN_DB_INTEGER})
    return PydanticCustomError("int_out_of_range", "Input should be at most {max}", {"max": MAX_DB_INTEGER})


def _whole_number(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if value is None:  # an optional parameter's null: the type says whether it may be
        return handler(value)
    if isinstance(value, str):
        if not _PLAIN_DECIMAL.fullmatch(value):
            raise PydanticCustomError("int_plain_decimal", "Input should be a whole number in plain digits (0-9)")
        if len(value) > _MAX_DIGITS:
            raise _out_of_range(None)
        value = int(value)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_type", "Input should be a whole number")
    number = handler(value)  # the bounds the parameter declares, with their own message
    if isinstance(number, int) and not MIN_DB_INTEGER <= number <= MAX_DB_INTEGER:
        raise _out_of_range(number)
    return number


#: Marks an ``int`` parameter or field as a :mod:`whole number <pippin.server.integers>`; put it last.
WHOLE_NUMBER = WrapValidator(_whole_number)
