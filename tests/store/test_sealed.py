"""Every column that holds sealed secrets is listed where the key check and rotation find them."""

from __future__ import annotations

from sqlalchemy import LargeBinary

from pippin.store.models import Base
from pippin.store.sealed import SEALED_COLUMNS


def test_every_encrypted_column_is_in_the_sealed_columns() -> None:
    listed = {(column.class_.__tablename__, column.key) for column in SEALED_COLUMNS}
    binary = {
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, LargeBinary)
    }
    assert {name for name in binary if name[1].endswith("_encrypted")} == listed
    assert listed <= binary
