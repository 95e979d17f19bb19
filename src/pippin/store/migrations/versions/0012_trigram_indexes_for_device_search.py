"""On PostgreSQL, trigram indexes for the inventory's search, so "contains" needs no scan of every device

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 01:30:00

The inventory's search matches text anywhere in the serial number, model, asset tag or description, ignoring
case (``ILIKE '%text%'``); a B-tree cannot serve that, so a search that matches few devices read all of them.
``pg_trgm``'s GIN indexes serve ``ILIKE`` for texts of three characters or more. The extension ships with
PostgreSQL (the contrib package) and is trusted, so a database owner may create it; where it is missing or may
not be created, this revision leaves the indexes out and says so, and the search still works, by scanning.
SQLite has no such index: its ``LIKE`` over the covering index ``ix_devices_search`` stays as it is.
"""

from __future__ import annotations

import logging

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SEARCHED_COLUMNS = ("serial_number", "model", "asset_tag", "description")
# Outside the models (they are PostgreSQL's alone); pippin.store.migrate keeps autogenerate from dropping them.
INDEX_PREFIX = "ix_devices_trigram_"

log = logging.getLogger("pippin.store.migrate")


def _trigram_schema() -> str | None:
    """The schema pg_trgm is installed in, installing it first where it is missing and may be installed."""
    bind = op.get_bind()
    find = (
        "SELECT n.nspname FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    )
    schema = bind.exec_driver_sql(find).scalar()
    if schema is not None:
        return str(schema)
    if bind.exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'").scalar() is None:
        log.warning("PostgreSQL has no pg_trgm extension (the contrib package): device search will scan.")
        return None
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:
        log.warning("Could not create the pg_trgm extension (%s): device search will scan.", type(exc).__name__)
        return None
    return str(bind.exec_driver_sql(find).scalar())


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    schema = _trigram_schema()
    if schema is None:
        return
    quoted = op.get_bind().dialect.identifier_preparer.quote_identifier(schema)
    for column in SEARCHED_COLUMNS:
        op.execute(f"CREATE INDEX {INDEX_PREFIX}{column} ON devices USING gin ({column} {quoted}.gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in SEARCHED_COLUMNS:
        op.execute(f"DROP INDEX IF EXISTS {INDEX_PREFIX}{column}")
