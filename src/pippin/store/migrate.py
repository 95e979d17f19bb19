"""Bring a database to the newest schema with Alembic, keeping every row; safe from several processes at once.

On SQLite, Alembic's batch mode changes a table by copying it into a new one and dropping the old. With foreign
keys on, dropping ``dep_tokens`` deletes every ``sync_runs`` row (ON DELETE CASCADE) and empties every
``devices.token_id`` (ON DELETE SET NULL). So migrations run with foreign keys off (a pragma SQLite honours
only outside a transaction), all in one transaction, and ``PRAGMA foreign_key_check`` runs before it commits: a
migration that would leave a dangling reference is rolled back whole and named in the error.

Who migrates: ``pippin db upgrade``, explicitly. :func:`check_schema` (the other commands) creates the schema of
an empty database, and refuses a database whose schema is behind or ahead of this release with the command to run.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from pippin.errors import Conflict, PippinError
from pippin.store.db import READ_ONLY_OPTION

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any fixed number: held while migrating so two processes starting together do not migrate twice.
_MIGRATION_LOCK_KEY = 0x50495050


class MigrationFailed(PippinError):
    """A migration would have broken the data; it was rolled back, and the database is as it was."""


class SchemaBehind(Conflict):
    """The database's schema is older (or newer) than this release of Pippin expects."""


@dataclass(frozen=True)
class Upgrade:
    """What :func:`upgrade_to_head` did: the revision the database was at, and the one it is at now."""

    from_revision: str | None
    to_revision: str | None

    @property
    def changed(self) -> bool:
        return self.from_revision != self.to_revision


#: Indexes the migrations create on PostgreSQL alone (the search's trigram indexes, revision 0012), which the
#: models do not describe: comparing the schema with the models leaves them out.
DIALECT_ONLY_INDEX_PREFIXES = ("ix_devices_trigram_",)


def include_in_comparison(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's ``include_object``: everything but the dialect-only indexes."""
    return not (type_ == "index" and name is not None and name.startswith(DIALECT_ONLY_INDEX_PREFIXES))


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    """The migration scripts, read once per process: they ship with this release and cannot change while it runs,
    and reading them (importing every revision file) is most of what a command's schema check would cost."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def head_revision(engine: Engine) -> str | None:
    return _scripts().get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at; a read, so every command's check waits for no writer."""
    with engine.connect() as connection:
        connection.execution_options(**{READ_ONLY_OPTION: True})
        return MigrationContext.configure(connection).get_current_revision()


def _raw_execute(connection: Connection, sql: str) -> None:
    """Run ``sql`` on the driver connection, outside any transaction SQLAlchemy would begin first."""
    driver_connection: Any = connection.connection.driver_connection
    driver_connection.execute(sql)


def check_foreign_keys(connection: Connection) -> None:
    """Raise :class:`MigrationFailed`, naming the tables, if any row points at a row that does not exist (SQLite)."""
    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if not problems:
        return
    counts: dict[tuple[str, str], int] = {}
    for table, _rowid, parent, _fk_index in problems:
        counts[(table, parent)] = counts.get((table, parent), 0) + 1
    found = "; ".join(f"{n} row(s) of {table} point at missing {parent}" for (table, parent), n in counts.items())
    raise MigrationFailed(
        f"The migration was rolled back because it would break references: {found}.",
        hint="The database is unchanged. Keep a copy of it and report this with `pippin db upgrade`'s output.",
    )


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction for migrating; commits when the block ends, rolls back when it raises.

    On SQLite foreign keys are off for its length and checked before the commit (see the module docstring); on
    PostgreSQL an advisory lock keeps a second process from migrating at the same time (SQLite's ``BEGIN
    IMMEDIATE`` does that there).
    """
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            _raw_execute(connection, "PRAGMA foreign_keys=OFF")
            try:
                with connection.begin():
                    yield connection
                    check_foreign_keys(connection)
            finally:
                _raw_execute(connection, "PRAGMA foreign_keys=ON")
            return
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            with connection.begin():
                yield connection
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            connection.commit()


def upgrade_to(engine: Engine, revision: str) -> Upgrade:
    """Apply every migration up to ``revision`` in one transaction; says from which revision to which."""
    with migration_connection(engine) as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        after = MigrationContext.configure(connection).get_current_revision()
    return Upgrade(from_revision=before, to_revision=after)


def upgrade_to_head(engine: Engine) -> Upgrade:
    """Apply every migration not yet applied. A no-op (one query) when the schema is current."""
    current = current_revision(engine)
    if current == head_revision(engine):
        return Upgrade(from_revision=current, to_revision=current)
    return upgrade_to(engine, "head")


def check_schema(engine: Engine) -> None:
    """Make sure this release can use the database: create the schema of an empty one, refuse one behind or ahead.

    Upgrading an existing database is an admin's decision (a backup first, every server of a deployment on the
    new release), so only ``pippin db upgrade`` does it.
    """
    current, head = current_revision(engine), head_revision(engine)
    if current == head:
        return
    if current is None:
        upgrade_to_head(engine)
        return
    known = {script.revision for script in _scripts().walk_revisions()}
    if current not in known:
        raise SchemaBehind(
            f"The database's schema is at revision {current}, which this release of Pippin does not know: a newer "
            "release wrote it.",
            hint="Run the newer release of Pippin, or restore a backup made before it upgraded the database.",
        )
    raise SchemaBehind(
        f"The database's schema is at revision {current}; this release of Pippin needs {head}.",
        hint="Back up the database, then run `pippin db upgrade` (once, from any one machine).",
    )
