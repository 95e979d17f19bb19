"""`pippin secrets rotate`: seal every secret with a new master key, in a way that a crash never loses the key.

With the key in a file (DATA_DIR/master.key), the new key is written to ``master.key.new`` (0600, flushed)
before the database changes; the database is re-sealed and its check value changed in one transaction; only
then does ``master.key.new`` replace ``master.key``, which is kept as ``master.key.old``. A crash before the
commit leaves the old key in ``master.key`` matching the database (a stale ``master.key.new`` is ignored and
replaced by the next rotation); a crash after it leaves ``master.key.new`` matching the database, and the next
Pippin process to start finishes the swap (``admin/master_key.py``). With PIPPIN_SECRET_KEY, Pippin cannot keep
the key for you: the new one is read from standard input, so it is stored where the variable comes from before
anything changes.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pippin.admin.key_rotation import rotate_master_key
from pippin.cli.audit import cli_actor
from pippin.cli.context import cli_context
from pippin.cli.output import stderr, stdout
from pippin.crypto.secrets import (
    MAKE_KEY_COMMAND,
    NEW_KEY_FILE_NAME,
    OLD_KEY_FILE_NAME,
    SecretBox,
    generate_master_key,
    parse_master_key,
    promote_new_key_file,
    replace_key_file,
)
from pippin.errors import InvalidInput
from pippin.store.db import transaction

app = typer.Typer(help="The master key that seals secrets at rest.", no_args_is_help=True)

_MAX_KEY_INPUT = 1024


def _key_from_stdin() -> bytes:
    text = sys.stdin.read(_MAX_KEY_INPUT)
    return parse_master_key(text, source="standard input")


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    new_key_stdin: Annotated[
        bool,
        typer.Option(
            "--new-key-stdin",
            help="Read the new master key (url-safe base64 of 32 bytes) from standard input; needed with "
            "PIPPIN_SECRET_KEY. Without it, Pippin makes the new key and keeps it in DATA_DIR/master.key.",
        ),
    ] = False,
) -> None:
    """Seal every stored secret with a new master key; stop every other Pippin process first."""
    context = cli_context(ctx)
    settings = context.settings
    in_environment = settings.secret_key is not None
    if in_environment and not new_key_stdin:
        raise InvalidInput(
            "The master key comes from PIPPIN_SECRET_KEY, so Pippin cannot keep the new one for you; nothing was "
            "changed.",
            hint=f"Make a key ({MAKE_KEY_COMMAND}), store it where PIPPIN_SECRET_KEY comes from, then pass it on "
            "standard input: `pippin secrets rotate --new-key-stdin < FILE`.",
        )
    new_key = _key_from_stdin() if new_key_stdin else generate_master_key()
    box = context.secret_box  # the database's key, checked (and an interrupted rotation finished)
    folder = settings.data_dir
    if not in_environment:
        # On disk before the database changes: whatever happens next, the key the database will hold exists.
        replace_key_file(folder / NEW_KEY_FILE_NAME, new_key)
    with transaction(context.session_factory) as session:
        try:
            rotation = rotate_master_key(session, box=box, new_box=SecretBox(new_key), actor=cli_actor())
        except BaseException:
            # Raised before the commit: the database keeps the old key, so the new file opens nothing.
            if not in_environment:
                (folder / NEW_KEY_FILE_NAME).unlink(missing_ok=True)
            raise
    if not in_environment:
        promote_new_key_file(folder)
    stdout.print(
        f"Sealed {rotation.secrets} secrets with the new master key {rotation.new_fingerprint} "
        f"(was {rotation.old_fingerprint}).",
        markup=False,
    )
    if in_environment:
        stderr.print(
            "Set PIPPIN_SECRET_KEY to the new key (the one on standard input) for every Pippin process and restart "
            "them: a process still holding the old key is refused.",
            markup=False,
        )
    else:
        stderr.print(
            f"The new key is in {folder / 'master.key'}; the previous one is in {folder / OLD_KEY_FILE_NAME}, "
            "which opens backups made before now: move it off this machine, or delete it. Restart every Pippin "
            "process, and give any other data directory a copy of the new master.key.",
            markup=False,
        )
