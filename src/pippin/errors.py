"""The one exception tree every Pippin failure belongs to.

Each error carries a message (what happened) and a hint (what to do next). Interfaces translate them:
``api/errors.py`` into HTTP statuses, ``cli/`` into exit codes and one-line messages. Neither the message
nor the hint may ever contain a secret.
"""

from __future__ import annotations


class PippinError(Exception):
    """Base of every error Pippin raises on purpose."""

    #: Short machine-readable code, stable across releases (API ``error`` field, CLI ``--json``).
    code = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class InvalidInput(PippinError):
    """The caller's input is wrong; nothing was changed."""

    code = "invalid_input"


class NotFound(PippinError):
    """A named thing does not exist."""

    code = "not_found"


class Conflict(PippinError):
    """The request clashes with the current state (a name taken, a sync already running)."""

    code = "conflict"


class Unavailable(PippinError):
    """Something Pippin depends on (Apple, the database) cannot be reached right now; retrying may work."""

    code = "unavailable"


class ConfigurationError(PippinError):
    """Pippin's own configuration is wrong or incomplete."""

    code = "configuration_error"
