"""Engines, sessions and transactions: the only place that knows how Pippin connects to its database.

Every unit of work says what it is. A *write* transaction (:func:`transaction`) on SQLite starts with
``BEGIN IMMEDIATE``: it takes the one write lock up front, so read-then-write can never fail on lock upgrade
and the conditional updates that guard the sync window are serialised across processes. A *read* transaction
(:func:`read_transaction`, and the request sessions of GET and HEAD) starts deferred with ``BEGIN``: in WAL mode
it reads a snapshot and never waits for, or holds up, a writer. PostgreSQL runs both at READ COMMITTED; its
guards are single conditional ``UPDATE`` statements or row locks.

A read transaction that turns out to write (a sign-in touching ``last_seen_at`` once a minute) is restarted as a
write transaction on SQLite just before its first write: in WAL mode a deferred transaction whose snapshot is
older than another writer's commit fails at once with "database is locked", whatever the busy timeout. It has
written nothing until then, so restarting loses nothing; what it read before stays as fresh as any read.

A database that cannot be reached or used (a server that does not answer, a file that is no database, a folder
this user may not write) raises :class:`DatabaseUnavailable` from wherever it was first touched, naming the
database (its password masked) and the driver's reason: every interface then says so in its own words (exit
code 5, HTTP 503) instead of failing with the driver's exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from pippin.errors import ConfigurationError, Unavailable
from pippin.printable import printable
from pippin.private_files import secure_database_files

SessionFactory = sessionmaker[Session]

#: Execution option marking a connection whose transaction only reads (deferred BEGIN on SQLite).
READ_ONLY_OPTION = "pippin_read_only"
#: Connection-info key set once a SQLite transaction holds the write lock.
_HOLDS_WRITE_LOCK = "pippin_holds_write_lock"
#: Session-info key set on sessions opened by :func:`read_transaction` / :func:`open_request_session`.
_READ_SESSION = "pippin_read_session"
_READ_METHODS = frozenset({"GET", "HEAD"})

#: SQLite's result codes for a database file that cannot be used as one right now (Python's sqlite3 names them
#: in ``sqlite_errorname``; extended codes such as SQLITE_IOERR_WRITE start with these).
_SQLITE_UNUSABLE = ("SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_IOERR",
                    "SQLITE_FULL", "SQLITE_CORRUPT", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_AUTH")  # fmt: skip
#: PostgreSQL's SQLSTATE classes for a server that cannot serve: connection exceptions, insufficient
#: resources (too many connections, disk full), operator intervention (shutting down, starting up).
_POSTGRES_UNAVAILABLE = ("08", "53", "57P")


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached or used right now: its message names it (password masked) and the reason.

    The message is for the operator; a web client gets a message of its own (``server/errors.py``), since the
    name of a database server and its user are nobody else's business.
    """

    code = "database_unavailable"

    def __init__(self, database: str, reason: str) -> None:
        super().__init__(
            f"The database {database} cannot be used: {reason}",
            hint="Check that it runs and that this user may reach it (PIPPIN_DATABASE_URL, or PIPPIN_DATA_DIR for "
            "SQLite); then try again.",
        )
        self.database = database
        self.reason = reason


def shown_url(url: URL) -> str:
    """``url`` for people: the password masked, and a SQLite path that is not UTF-8 with its bytes escaped."""
    database = url.database
    try:
        if database and not database.isprintable():
            # Rendering would percent-encode the escapes; the path goes in as the reader should see it.
            placeholder = "PIPPIN-DATABASE-PATH"
            shown = printable(database.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
            return url.set(database=placeholder).render_as_string(hide_password=True).replace(placeholder, shown)
        return url.render_as_string(hide_password=True)
    except UnicodeEncodeError:  # a user or host name that is not UTF-8 either
        return f"{url.drivername}://(a name that is not UTF-8)"


def _reason(error: BaseException, url: URL) -> str:
    """The first line of the driver's message, printable and short, with the URL's password (should a driver
    ever quote it) masked."""
    lines = str(error).strip().splitlines()
    reason = lines[0].strip() if lines else type(error).__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    reason = printable(reason[:300])
    return reason if reason.endswith((".", "?", "!")) else f"{reason}."


def _is_unavailable(context: ExceptionContext) -> bool:
    """Whether the driver's error says the database cannot serve (rather than that a statement is wrong)."""
    if context.is_pre_ping:
        return False  # the pool replaces a dead pooled connection by itself; a failed reconnect comes back here
    if not isinstance(context.original_exception, Exception):
        # Ctrl-C, SystemExit, a dying thread: SQLAlchemy counts them as disconnects, but they must go on as they are.
        return False
    if context.connection is None or context.is_disconnect:
        return True  # failed to connect, or the server went away
    original = context.original_exception
    sqlite_code = getattr(original, "sqlite_errorname", None)
    if isinstance(sqlite_code, str) and sqlite_code.startswith(_SQLITE_UNUSABLE):
        return True
    sqlstate = getattr(original, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_POSTGRES_UNAVAILABLE)


def _raise_unavailable(engine: Engine, *, configured: URL) -> None:
    """Make ``engine`` raise :class:`DatabaseUnavailable` for errors that say the database cannot serve,
    naming it as configured (``postgresql://``, before the driver name is added)."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> BaseException | None:
        if not _is_unavailable(context):
            return None
        return DatabaseUnavailable(shown_url(configured), _reason(context.original_exception, configured))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself instead of the driver's lazy BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.info[_HOLDS_WRITE_LOCK] = False
            connection.exec_driver_sql("BEGIN")
        else:
            connection.info[_HOLDS_WRITE_LOCK] = True
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _before_flush(session: Session, _flush_context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        _take_write_lock(session)


def _before_execute(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        _take_write_lock(state.session)


def _take_write_lock(session: Session) -> None:
    """Before a read session's first write on SQLite, restart its (so far read-only) transaction as IMMEDIATE."""
    if not session.info.get(_READ_SESSION):
        return
    connection = session.connection()
    if connection.dialect.name != "sqlite" or connection.info.get(_HOLDS_WRITE_LOCK, True):
        return
    connection.exec_driver_sql("ROLLBACK")
    connection.exec_driver_sql("BEGIN IMMEDIATE")
    connection.info[_HOLDS_WRITE_LOCK] = True


def create_db_engine(url: str, *, private_files: bool = True, **kwargs: Any) -> Engine:
    """An engine for ``url``, set up for Pippin's concurrency rules on SQLite or PostgreSQL.

    A SQLite database file is created 0600 (a new folder for it 0700) before SQLite opens it, so its WAL and
    shared-memory files, which SQLite creates with the database's mode, are private too; an existing one is
    tightened (``private_files.py``). ``private_files=False`` leaves the files as they are (`pippin doctor`).
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(
            "PIPPIN_DATABASE_URL is not a database URL.",
            hint="Use sqlite:///path/to/pippin.db or postgresql+psycopg://user@host/dbname.",
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            database = Path(parsed.database)
            try:
                if private_files:
                    secure_database_files(database)  # its folder made 0700 when missing
                else:
                    database.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                reason = f"cannot create its folder or file {printable(str(database))}: {exc.strerror or exc}."
                raise DatabaseUnavailable(shown_url(parsed), reason) from exc
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        _raise_unavailable(engine, configured=parsed)
        return engine
    if backend == "postgresql":
        driver = parsed.set(drivername="postgresql+psycopg") if parsed.drivername == "postgresql" else parsed
        engine = create_engine(driver, pool_pre_ping=True, **kwargs)
        _raise_unavailable(engine, configured=parsed)
        _plan_for_each_value(engine)
        return engine
    raise ConfigurationError(
        f"Database backend {backend!r} is not supported.",
        hint="Pippin runs on SQLite (the default) and PostgreSQL.",
    )


def _plan_for_each_value(engine: Engine) -> None:
    """Plan every PostgreSQL statement for the values it is run with, never once for all values.

    psycopg prepares a statement run five times, and PostgreSQL may then keep a generic plan, made without the
    values. The inventory's best plan depends on them: a search for a rare text should read the trigram indexes,
    one for a common text may walk the serial order. Planning Pippin's short statements costs far less than a
    wrong plan over the fleet.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_connection.commit()


def create_session_factory(engine: Engine) -> SessionFactory:
    """Sessions that keep loaded objects usable after commit (the CLI prints them after the transaction)."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    event.listen(factory, "before_flush", _before_flush)
    event.listen(factory, "do_orm_execute", _before_execute)
    return factory


def begin_read(session: Session) -> None:
    """Begin ``session``'s transaction as a read: deferred on SQLite, so it waits for no writer.

    Only the transaction begun now is a read; after it commits, the session's next one is a write again.
    """
    session.info[_READ_SESSION] = True
    session.connection(execution_options={READ_ONLY_OPTION: True})


@contextmanager
def transaction(factory: SessionFactory) -> Iterator[Session]:
    """One unit of work that writes: takes the write lock up front, commits when the block ends, rolls back
    when it raises."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def read_transaction(factory: SessionFactory) -> Iterator[Session]:
    """One unit of work that reads: never waits for a writer on SQLite; commits when the block ends (a read
    that wrote after all keeps what it wrote, see the module docstring)."""
    with factory() as session, session.begin():
        begin_read(session)
        yield session


@contextmanager
def request_session(factory: SessionFactory, *, method: str) -> Iterator[Session]:
    """The session of one HTTP request: a read for GET and HEAD, a write otherwise.

    The caller commits (the request dependency does when the route returns); an error rolls back.
    """
    with factory() as session:
        if method.upper() in _READ_METHODS:
            begin_read(session)
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
