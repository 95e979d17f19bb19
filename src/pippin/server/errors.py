"""The statuses every web sub-app gives Pippin's errors; each sub-app renders them in its own contract.

One table, most specific class first, so the API (JSON), the console (pages) and the device endpoints (plain
text) agree on what an error means. None of these is 401: the API adds 401 for its own authentication
failures, and the device endpoints must never answer 401 for an ordinary error (a 401 makes a device remove
its enrollment, reference ``apple-mdm-protocol.md`` section 2, "HTTP status semantics").
"""

from __future__ import annotations

from pippin.admin.users import SignInThrottled
from pippin.dep.errors import DEPAuthFailure, DEPError
from pippin.errors import ConfigurationError, Conflict, InvalidInput, NotFound, PippinError, Unavailable


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
