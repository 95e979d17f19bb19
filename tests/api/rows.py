"""Every row of every table, to show that a refused request changed nothing at all."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import Base


def every_row(resources: ServerResources) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, every column: equal before and after means nothing at all changed."""
    with transaction(resources.session_factory) as session:
        return {
            table.name: [tuple(row) for row in session.execute(select(table).order_by(*table.primary_key.columns))]
            for table in Base.metadata.sorted_tables
        }
