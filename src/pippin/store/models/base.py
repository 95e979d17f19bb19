"""The declarative base and the column types every model shares."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Enum, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

#: The largest value an integer column (ids included) holds on every database Pippin runs on: PostgreSQL's
#: ``integer`` (SQLite's is 64 bits). A number from outside past it can match no row, and on SQLite one past
#: 64 bits cannot even be sent, so interfaces refuse it up front.
MAX_STORED_INTEGER = 2**31 - 1

# Stable constraint names, so Alembic revisions name the same thing on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and always read back timezone-aware.

    SQLite keeps no zone and PostgreSQL's ``timestamptz`` converts to the session's zone; storing naive UTC
    on both and attaching UTC on the way out makes every ``*_at`` value compare the same everywhere.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_column(enum: type[StrEnum], *, length: int) -> Enum:
    """A column of ``enum``'s values stored as text (``VARCHAR(length)``), read back as the enum.

    Stored as the values, not the member names (``read-only``, not ``read_only``), and with no database enum type
    or CHECK constraint, so adding a value later needs no migration.
    """
    return Enum(enum, native_enum=False, length=length, values_callable=lambda members: [m.value for m in members])


class Base(DeclarativeBase):
    """Base of every Pippin ORM class."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
