"""Files a command writes as its result: checked before anything changes, in place only once the database committed.

A command that writes a file and changes the database must leave neither behind when either fails. The file is
first made as a temporary file beside its target, before the transaction starts, which proves the folder is
there and writable; the content goes into it inside the transaction (a failed write rolls the change back); it
takes the target's name only after the commit (a failed commit removes it). The reader of the target never
sees a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pippin.errors import Conflict, InvalidInput
from pippin.printable import printable

_SHOWN_PATH_CHARS = 200


def shown_path(path: Path) -> str:
    """``path`` as an error message shows it: printable and short."""
    text = str(path)
    return printable(text if len(text) <= _SHOWN_PATH_CHARS else text[: _SHOWN_PATH_CHARS - 3] + "...")


def _cannot_write(path: Path, error: OSError | ValueError) -> InvalidInput:
    hint = "Name a file in an existing folder you may write to."
    if isinstance(error, ValueError):  # a NUL in the name: no file can be called that
        return InvalidInput(f"{shown_path(path)} is not a possible file name.", hint=hint)
    if isinstance(error, FileNotFoundError):
        return InvalidInput(f"Cannot write {shown_path(path)}: the folder {shown_path(path.parent)} does not exist.")
    return InvalidInput(f"Cannot write {shown_path(path)}: {error.strerror or error}.", hint=hint)


class StagedFile:
    """The content of ``target``, held in a temporary file in the same folder until :meth:`publish`."""

    def __init__(self, target: Path, *, force: bool) -> None:
        self.target = target
        self.force = force
        self._fd: int | None = None
        self._written = False
        try:
            if target.is_dir():
                raise InvalidInput(f"{shown_path(target)} is a folder.", hint="Name a file to write, inside it.")
            if target.exists() and not force:
                raise Conflict(
                    f"{shown_path(target)} already exists.",
                    hint="Choose another file, or pass --force to overwrite it.",
                )
            self.temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            self._fd = os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except (OSError, ValueError) as error:
            raise _cannot_write(target, error) from None

    def write(self, content: bytes) -> None:
        """Write the whole content and make it durable; a failure raises InvalidInput (the caller rolls back)."""
        fd, self._fd = self._fd, None
        assert fd is not None, "a staged file is written once"
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise _cannot_write(self.target, error) from None
        self._written = True

    def publish(self) -> None:
        """Give the written content the target's name (replacing it only with ``force``)."""
        assert self._written, "publish follows write"
        try:
            if self.force:
                os.replace(self.temporary, self.target)
                return
            try:
                # Unlike a rename, a link never replaces a file that appeared since the check.
                os.link(self.temporary, self.target)
            except FileExistsError:
                raise Conflict(
                    f"{shown_path(self.target)} appeared while this command ran; it was left as it is.",
                    hint="Run the command again with another file, or with --force.",
                ) from None
            except OSError:  # a file system without hard links: the check at the start has to do
                os.replace(self.temporary, self.target)
        except OSError as error:
            raise _cannot_write(self.target, error) from None
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the temporary file; the target is left as it was."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        with contextlib.suppress(OSError):
            self.temporary.unlink(missing_ok=True)


@contextmanager
def written_after_commit(target: Path | None, *, force: bool) -> Iterator[StagedFile | None]:
    """Stage ``target`` for the block (``None``: nothing to write); publish it when the block ends, else discard it.

    Enter it before the transaction, so the transaction ends (commits) before the file is published::

        with written_after_commit(path, force=force) as staged, transaction(factory) as session:
            ...
            staged.write(content)
    """
    if target is None:
        yield None
        return
    staged = StagedFile(target, force=force)
    try:
        yield staged
    except BaseException:
        staged.discard()
        raise
    staged.publish()
