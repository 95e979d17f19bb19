"""The password a CLI command sets: prompted for twice, or one line of standard input for scripts."""

from __future__ import annotations

import sys

import typer

from pippin.admin.users import MAX_PASSWORD_CHARS
from pippin.errors import InvalidInput


def read_password(from_stdin: bool) -> str:
    """A new password: one line of standard input (as ``echo "$PASSWORD" | pippin ... --password-stdin`` sends it)
    when ``from_stdin``, else prompted for with confirmation."""
    if from_stdin:
        # Read a little past the limit so that an oversized input is refused by the service instead of silently cut.
        not_text = InvalidInput("The password on standard input is not UTF-8 text.", hint="Send it as UTF-8.")
        try:
            line = sys.stdin.readline(MAX_PASSWORD_CHARS + 2)
            # Undecodable bytes arrive as lone surrogates (PEP 383), or fail right away under a strict locale.
            line.encode("utf-8")
        except UnicodeError:
            raise not_text from None
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise InvalidInput("No password arrived on standard input.", hint="Send it as one line.")
        return password
    prompted: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return prompted
