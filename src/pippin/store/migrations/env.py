"""Alembic environment: runs on the connection Pippin hands it (``store/migrate.py``), never a global URL.

That connection is already in the one transaction the whole upgrade runs in, with SQLite's foreign keys off:
batch mode recreates tables, and a recreated parent must not cascade into its children.
"""

from __future__ import annotations

from alembic import context

from pippin.store.migrate import include_in_comparison
from pippin.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("Pippin's migrations run through pippin.store.migrate, which passes a connection.")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        include_object=include_in_comparison,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
