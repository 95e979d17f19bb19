"""Pippin's files stay its own: the data directory 0700, every file Pippin keeps in it 0600.

The data directory holds the master key and, with SQLite, the database with its write-ahead log (``-wal``) and
shared-memory index (``-shm``): password and session hashes, the audit log, the inventory and the sealed
secrets. Pippin creates each of them private (SQLite gives the files it adds the database file's mode), and
tightens a mode that is too open when it starts, logging a warning with the file and its mode before; a file it
cannot change (another user's) is only warned about. A master key file others can read is refused instead
(``crypto/secrets.py``): the key may have been copied, which a chmod does not undo.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
#: A SQLite database's side files: the write-ahead log, its shared-memory index, a rollback journal.
DATABASE_FILE_SUFFIXES = ("-wal", "-shm", "-journal")
#: The master key files (``master.key``, ``.new``, ``.old``): refused when too open, never tightened.
KEY_FILE_PREFIX = "master.key"

logger = logging.getLogger("pippin.files")


def tighten(path: Path, allowed: int) -> None:
    """Take from ``path``'s mode every bit outside ``allowed`` (never adds one); warn about what changed."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not mode & ~allowed:
        return
    fields = {"path": str(path), "mode_was": f"{mode:o}", "mode": f"{mode & allowed:o}"}
    try:
        path.chmod(mode & allowed)
    except OSError as exc:
        fields["reason"] = exc.strerror or str(exc)
        logger.warning("cannot restrict a file other users can reach; chmod it yourself", extra={"fields": fields})
        return
    logger.warning("restricted a file other users could reach", extra={"fields": fields})


def make_private_directory(path: Path) -> None:
    """Create ``path`` with mode 0700 (its missing parents too), or tighten it to 0700 if it exists."""
    path.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True, exist_ok=True)
    tighten(path, PRIVATE_DIRECTORY_MODE)


def make_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist, or tighten it to 0600 if it does."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
        return
    tighten(path, PRIVATE_FILE_MODE)


def secure_database_files(database: Path) -> None:
    """The SQLite database ``database`` and its side files private (created 0600 if missing)."""
    if not database.parent.exists():
        make_private_directory(database.parent)
    make_private_file(database)
    for suffix in DATABASE_FILE_SUFFIXES:
        tighten(database.with_name(database.name + suffix), PRIVATE_FILE_MODE)


def secure_data_directory(path: Path) -> None:
    """Tighten an existing data directory to 0700 and every file in it to 0600 (but the master key files, which
    are refused instead); creates nothing."""
    if not path.is_dir():
        return
    tighten(path, PRIVATE_DIRECTORY_MODE)
    for child in path.iterdir():
        if child.is_file() and not child.is_symlink() and not child.name.startswith(KEY_FILE_PREFIX):
            tighten(child, PRIVATE_FILE_MODE)


def sync_directory(path: Path) -> None:
    """Flush ``path``'s entries to disk, so a rename in it survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
