"""The simulator's database and clock, opened once per simulator process and shared by every route."""

from __future__ import annotations

import hashlib
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from pippin.sim.models import SimBase, SimOrganization


@dataclass
class SimClock:
    """Apple's clock as the simulator plays it: the real time plus an offset that tests can advance."""

    offset: timedelta = field(default_factory=timedelta)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def wall_now(self) -> datetime:
        """The real time, whatever the offset. Clients stamp the certificates they upload with it, and check
        those the simulator gives them (vendor certificates, device identities) against it, so certificate
        validity is judged by it, not by the settable clock."""
        return datetime.now(UTC)


@dataclass
class SimState:
    """Everything a simulator route needs: sessions on the simulator's database, and its clock."""

    engine: Engine
    session_factory: sessionmaker[Session]
    clock: SimClock
    data_dir: Path
    #: Bumped by every ``PUT /portal/faults``: lets the APNs hot path skip the database while no fault is set.
    faults_revision: int = 0

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back when it raises."""
        with self.session_factory() as session, session.begin():
            yield session

    def organization(self, session: Session) -> SimOrganization:
        return session.scalars(select(SimOrganization)).one()

    def advance_clock(self, seconds: float) -> None:
        """Move the simulator's clock forward, persistently (cursor, session, token expiry without waiting)."""
        with self.transaction() as session:
            org = self.organization(session)
            org.clock_offset_seconds += seconds
            self.clock.offset = timedelta(seconds=org.clock_offset_seconds)


def _sqlite_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Serialise writers up front: Apple never answers "database is locked".
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def open_state(data_dir: Path | None = None, *, org_name: str = "Pippin Test Organization") -> SimState:
    """Open (or create) the simulator's state in ``data_dir``; a fresh temporary directory when None."""
    directory = Path(tempfile.mkdtemp(prefix="pippin-sim-")) if data_dir is None else data_dir
    directory.mkdir(parents=True, exist_ok=True)
    engine = _sqlite_engine(directory / "sim.db")
    SimBase.metadata.create_all(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    clock = SimClock()
    with factory() as session, session.begin():
        org = session.scalars(select(SimOrganization)).one_or_none()
        if org is None:
            org_id = str(secrets.randbelow(10**12)).zfill(12)
            org = SimOrganization(
                org_name=org_name,
                org_email="it@example.com",
                org_phone="+46 8 123 456 00",
                org_address="Drottninggatan 1\n111 51 Stockholm\nSweden",
                org_id=org_id,
                org_id_hash=hashlib.sha256(org_id.encode()).hexdigest(),
                cursor_secret=secrets.token_hex(32),
                faults={},
                clock_offset_seconds=0.0,
                terms_pending=False,
            )
            session.add(org)
        clock.offset = timedelta(seconds=org.clock_offset_seconds)
    return SimState(engine=engine, session_factory=factory, clock=clock, data_dir=directory)
