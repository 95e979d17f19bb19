"""Write a new Alembic revision from the difference between the models and the migrated schema.

Usage: .venv/bin/python tools/new_migration.py "what changed" 0002
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from pippin.store.db import create_db_engine
from pippin.store.migrate import alembic_config, migration_connection, upgrade_to_head


def main() -> None:
    message, rev_id = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_db_engine(f"sqlite:///{Path(scratch) / 'scratch.db'}")
        upgrade_to_head(engine)
        with migration_connection(engine) as connection:
            config = alembic_config(engine)
            config.attributes["connection"] = connection
            command.revision(config, message=message, autogenerate=True, rev_id=rev_id)


if __name__ == "__main__":
    main()
