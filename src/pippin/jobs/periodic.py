"""Named periodic jobs, each on a thread of its own, so a slow job delays no other.

A domain describes its periodic work as :class:`PeriodicJob` values (``dep/scheduled.py`` registers the DEP jobs;
push retries, command expiry and certificate renewal follow the same shape) and the server root runs them all with
one :class:`JobRunner` for the life of the process.

Nothing here coordinates processes: several Pippin processes sharing one database each run every job, and each
job's own work is claimed through the database (the sync window in ``store/locks.py``, the assignment batches'
leases), so two processes never do the same piece of work. A job keeps no state between runs; what it needs
lives in the database, so a process may stop at any moment and another carries on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from pippin.errors import InvalidInput

logger = logging.getLogger(__name__)

#: What a job's run is given: true once the runner is stopping, so long work can end at a safe boundary.
ShouldStop = Callable[[], bool]


@dataclass(frozen=True)
class PeriodicJob:
    """One kind of periodic work: ``run`` is called, then again ``interval`` after it returns."""

    name: str
    interval: timedelta
    run: Callable[[ShouldStop], object]


@dataclass
class JobStatus:
    """What one job has done in this process, for logs and health pages."""

    name: str
    runs: int = 0
    failures: int = 0
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_error: str | None = None


class JobRunner:
    """Runs each job on its own daemon thread until :meth:`stop` (or the end of a ``with`` block).

    A job that raises is logged with its name and runs again at its next interval; the other jobs never notice.
    Stopping wakes every waiting thread at once and asks running jobs to stop (``should_stop``); it waits up to
    ``stop_timeout`` seconds for them, since a job in the middle of a call to Apple finishes that call first.
    """

    def __init__(
        self,
        jobs: Sequence[PeriodicJob],
        *,
        clock: Callable[[], datetime],
        stop_timeout: float = 60.0,
    ) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise InvalidInput("Two periodic jobs have the same name.", hint=f"Name each job once: {sorted(names)}.")
        for job in jobs:
            if job.interval <= timedelta(0):
                raise InvalidInput(f"Job {job.name!r} has no positive interval.", hint="Give it one, e.g. 60 s.")
        self.jobs = tuple(jobs)
        self.clock = clock
        self.stop_timeout = stop_timeout
        self.status = {job.name: JobStatus(job.name) for job in jobs}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._threads:
            return
        for job in self.jobs:
            thread = threading.Thread(target=self._loop, args=(job,), name=f"pippin-job-{job.name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=self.stop_timeout)
            if thread.is_alive():
                logger.warning("periodic job did not stop in time", extra={"fields": {"thread": thread.name}})

    def is_running(self) -> bool:
        """Whether any job's thread is still alive (false again once :meth:`stop` has returned in time)."""
        return any(thread.is_alive() for thread in self._threads)

    def __enter__(self) -> JobRunner:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def run_once(self, name: str) -> None:
        """Run one job now on the caller's thread, recorded like a scheduled run (for tests and operators)."""
        job = next((job for job in self.jobs if job.name == name), None)
        if job is None:
            raise InvalidInput(f"There is no periodic job named {name[:60]!r}.", hint=f"Jobs: {sorted(self.status)}.")
        self._run(job)

    def _loop(self, job: PeriodicJob) -> None:
        while not self._stopping.is_set():
            self._run(job)
            self._stopping.wait(job.interval.total_seconds())

    def _run(self, job: PeriodicJob) -> None:
        status = self.status[job.name]
        with self._lock:
            status.runs += 1
            status.last_started_at = self.clock()
        try:
            job.run(self._stopping.is_set)
        except Exception as error:  # one job's failure (the database briefly away, a bug) never stops the others
            logger.exception("periodic job failed", extra={"fields": {"job": job.name}})
            with self._lock:
                status.failures += 1
                status.last_error = type(error).__name__
        else:
            with self._lock:
                status.last_error = None
        finally:
            with self._lock:
                status.last_finished_at = self.clock()
