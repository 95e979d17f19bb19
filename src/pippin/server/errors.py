"""The statuses every web sub-app gives Pippin's errors; each sub-app renders them in its own contract.

One table, most specific class first, so the API (JSON), the console (pages) and the device endpoints (plain
text) agree on what an error means, and one rule for the errors whose message only the operator may read
(:func:`for_operator_only`). None of these is 401: the API adds 401 for its own authentication
failures, and the device endpoints must never answer 401 for an ordinary error (a 401 makes a device remove
its enrollment, reference ``apple-mdm-protocol.md`` section 2, "HTTP status semantics").
"""

from __future__ import annotations

from dataclasses import dataclass

from pippin.admin.users import SignInThrottled
from pippin.dep.errors import DEPAuthFailure, DEPError
from pippin.errors import ConfigurationError, Conflict, InvalidInput, NotFound, PippinError, Unavailable
from pippin.store.db import DatabaseUnavailable


class RequestTooLarge(InvalidInput):
    """A body or an uploaded file is over its size limit; it was not read to the end."""

    code = "too_large"


# Most specific first: DEPRequestRejected is InvalidInput (400), DEPUnavailable is DEPError before Unavailable.
_STATUSES: tuple[tuple[type[PippinError], int], ...] = (
    (RequestTooLarge, 413),
    (SignInThrottled, 429),
    (DEPAuthFailure, 424),
    (InvalidInput, 400),
    (NotFound, 404),
    (Conflict, 409),
    (DEPError, 502),
    (Unavailable, 503),
    (ConfigurationError, 500),
)


def status_for(error: PippinError) -> int:
    """The HTTP status of ``error``: its first matching class above, else 500."""
    for error_type, status in _STATUSES:
        if isinstance(error, error_type):
            return status
    return 500


@dataclass(frozen=True)
class ClientText:
    """What a web client reads in place of an error's own message and hint."""

    message: str
    hint: str


def for_operator_only(error: PippinError) -> ClientText | None:
    """The words a client gets instead of ``error``'s own, when those name the server's insides; else ``None``.

    A configuration error names the server's paths and settings, and an unreachable database its host, port and
    user: the operator reads them in the server log (each sub-app logs the original), the client learns only
    what happened and whether retrying may help.
    """
    if isinstance(error, DatabaseUnavailable):
        return ClientText(
            message="Pippin's database cannot be reached right now.",
            hint="Retry later; if it keeps failing, an operator should read the server log, which names the cause.",
        )
    if isinstance(error, ConfigurationError):
        return ClientText(
            message="Pippin's server configuration is wrong or incomplete.",
            hint="An operator should read the server log, which says what to fix.",
        )
    return None
