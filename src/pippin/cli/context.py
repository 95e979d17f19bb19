"""What every CLI command gets from the root callback: the settings and, on first use, the database and the
master key's secret box (refused when it is not the database's key, see ``admin/master_key.py``).

The database is opened only if its schema is this release's (an empty one gets it): upgrading is
`pippin db upgrade`'s job alone (see ``store/migrate.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import typer
from sqlalchemy import Engine

from pippin.admin.master_key import open_secret_box
from pippin.config import Settings
from pippin.crypto.keys import KeyGenerator, generate_private_key
from pippin.crypto.secrets import SecretBox
from pippin.private_files import secure_data_directory
from pippin.store.db import SessionFactory, create_db_engine, create_session_factory
from pippin.store.migrate import check_schema


@dataclass(frozen=True)
class CLIInjections:
    """What a program embedding the CLI (the tests) may hand the root callback as ``obj`` instead of the
    production defaults, as the server takes its outside clients (``server/resources.py``)."""

    #: How commands make private keys (the push certificate request).
    generate_key: KeyGenerator = generate_private_key


@dataclass
class CLIContext:
    """Built once per invocation; opens the database lazily so `pippin --help` needs none."""

    settings: Settings
    generate_key: KeyGenerator = generate_private_key
    _engine: Engine | None = field(default=None, init=False)
    _session_factory: SessionFactory | None = field(default=None, init=False)
    _secret_box: SecretBox | None = field(default=None, init=False)
    _schema_checked: bool = field(default=False, init=False)

    @property
    def unchecked_engine(self) -> Engine:
        """The engine, whatever the schema's revision: for `pippin db` commands, which look at it or upgrade it."""
        if self._engine is None:
            secure_data_directory(self.settings.data_dir)
            self._engine = create_db_engine(self.settings.resolved_database_url)
        return self._engine

    @property
    def engine(self) -> Engine:
        """The engine of a database at this release's schema; refuses (SchemaBehind) one behind or ahead."""
        engine = self.unchecked_engine
        if not self._schema_checked:
            check_schema(engine)
            self._schema_checked = True
        return engine

    @property
    def session_factory(self) -> SessionFactory:
        if self._session_factory is None:
            self._session_factory = create_session_factory(self.engine)
        return self._session_factory

    @property
    def secret_box(self) -> SecretBox:
        """The master key's box, for commands that touch secrets; refuses a key that is not the database's."""
        if self._secret_box is None:
            self._secret_box = open_secret_box(self.session_factory, settings=self.settings)
        return self._secret_box

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def cli_context(ctx: typer.Context) -> CLIContext:
    """The :class:`CLIContext` of the running command."""
    obj = ctx.find_root().obj
    assert isinstance(obj, CLIContext), "the root callback builds the CLI context"
    return obj
