"""Fixtures shared by the whole suite: settings, and a migrated database on SQLite and PostgreSQL.

Every test that asks for ``engine`` (or ``session_factory`` / ``session``) runs twice, once per database.
PostgreSQL runs use a schema of their own, created for this pytest process and dropped at its end, so
parallel runs on one server never collide. Without a reachable PostgreSQL those runs skip with the reason,
unless ``PIPPIN_REQUIRE_POSTGRES=1`` (set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.logs import SERVED_LOGGERS
from pippin.store.db import SessionFactory, create_db_engine, create_session_factory
from pippin.store.migrate import upgrade_to_head
from pippin.store.models import Base
from tests.api import request_counts
from tests.simulator import RunningSimulator, run_simulator

if TYPE_CHECKING:
    import psycopg

POSTGRES_URL = os.environ.get("PIPPIN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("PIPPIN_REQUIRE_POSTGRES") == "1"
FIXTURES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist's worker processes start with COLUMNS=80 and LINES=24 set. The CLI's Rich consoles, made when
    # it is imported, would take that as a fixed width, where one pytest process has them measure at each print
    # (the CLI tests give each invocation COLUMNS=200).
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


def fixture_path(*parts: str) -> Path:
    """A file under ../shared/fixtures; skips the test with the reason when that folder is absent."""
    path = FIXTURES_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared fixture {path} is not present (the ../shared folder is not checked out here)")
    return path


def _recorded(terminalreporter: pytest.TerminalReporter, name: str) -> list[object]:
    """The values of the ``name`` property the run's tests recorded, from their reports: those reach this
    process also from pytest-xdist's workers, whose own terminal output is never shown."""
    return [
        value
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "when", None) == "call"
        for key, value in report.user_properties
        if key == name
    ]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the run tried, beyond its tests: the hostile CLI invocations (each such test records
    ``cli_invocations``), the requests generated from the OpenAPI schema, and the console screenshots the browser
    tests saved (``screenshot``)."""
    counts = _recorded(terminalreporter, "cli_invocations")
    if counts:
        total = sum(int(str(value)) for value in counts)
        terminalreporter.write_line(f"hostile CLI invocations tried: {total} in {len(counts)} tests")
    schema_runs = _recorded(terminalreporter, request_counts.PROPERTY)
    if schema_runs:
        terminalreporter.section("requests generated from the OpenAPI schema")
        for line in request_counts.summary_lines([run for run in schema_runs if isinstance(run, dict)]):
            terminalreporter.write_line(line)
    screenshots = {str(path) for path in _recorded(terminalreporter, "screenshot")}
    if screenshots:
        folder = Path(next(iter(screenshots))).parent
        terminalreporter.write_line(f"console screenshots ({len(screenshots)}): {folder}")


@pytest.fixture(autouse=True)
def _pippin_logging_restored() -> Iterator[None]:
    """Whatever a test does to the loggers Pippin configures (a CLI command does) ends with the test."""
    loggers = [logging.getLogger(name) for name in SERVED_LOGGERS]
    saved = [(list(logger.handlers), logger.level, logger.propagate) for logger in loggers]
    yield
    for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per run; each test gets a copy, which is faster than migrating again."""
    path = tmp_path_factory.mktemp("template") / "pippin.db"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade_to_head(engine)
    engine.dispose()
    return path


def install_shared_extensions(conn: psycopg.Connection[Any]) -> None:
    """pg_trgm in ``public``, once per database, before any test schema exists.

    The search's migration installs pg_trgm where it is missing, which would be a test's private schema; dropping
    that schema would then drop the extension, and with it the indexes other tests' schemas made with it.
    """
    import psycopg

    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    except psycopg.errors.UniqueViolation:
        pass  # another test process created it at the same moment
    except psycopg.Error as exc:
        logging.getLogger(__name__).warning("pg_trgm could not be installed, so device search will scan: %s", exc)


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[str]:
    """A migrated PostgreSQL schema private to this pytest process."""
    import psycopg

    schema = f"pippin_test_{os.getpid()}_{secrets.token_hex(4)}"
    plain_url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(plain_url, connect_timeout=3, autocommit=True) as conn:
            install_shared_extensions(conn)
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}".strip()
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason} (PIPPIN_REQUIRE_POSTGRES=1 makes this a failure)")
        pytest.skip(reason)
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    engine = create_db_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with psycopg.connect(plain_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


#: Resets every sequence of the schema, so ids start at 1 again as on a new database.
_RESTART_SEQUENCES = (
    "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'S' AND n.nspname = current_schema()"
)


def _empty_all(engine: Engine) -> None:
    """Every table of the models emptied, and the sequences restarted, in one round trip.

    DELETE rather than TRUNCATE: on tables of a few rows it is ten times faster (TRUNCATE gives each table and
    index a new file). Children go before parents, and everything once more after that, since the triggers of
    revision 0011 count the deleted devices into ``device_state_counts``. ``alembic_version`` is no model's, and
    stays.
    """
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    existing = set(inspect(engine).get_table_names())
    deletes = [f'DELETE FROM "{name}"' for name in tables if name in existing]  # noqa: S608 (the models' names)
    with engine.begin() as conn:
        conn.exec_driver_sql("; ".join([*deletes, *deletes, _RESTART_SEQUENCES]))


#: The databases every database test runs on.
DATABASES = ["sqlite", "postgresql"]


def empty_database_url(request: pytest.FixtureRequest, kind: str, directory: Path) -> str:
    """The URL of an empty, migrated database of ``kind`` (one of :data:`DATABASES`), a SQLite file kept in
    ``directory``; for :func:`database_url` and for fixtures of a wider scope that share one database."""
    if kind == "sqlite":
        path = directory / "pippin.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_schema_url")
    engine = create_db_engine(url)
    _empty_all(engine)
    engine.dispose()
    return url


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database; parametrised over SQLite and PostgreSQL."""
    return empty_database_url(request, request.param, tmp_path)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> SessionFactory:
    return create_session_factory(engine)


@pytest.fixture
def session(session_factory: SessionFactory) -> Iterator[Session]:
    """A session in an open transaction, rolled back after the test."""
    with session_factory() as session, session.begin():
        yield session
        session.rollback()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings pointing at the test database and a private data directory, with a fixed master key."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
    )


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSimulator]:
    """A fresh Apple simulator on a loopback port, for the length of one test."""
    with run_simulator(tmp_path / "sim") as running:
        yield running
