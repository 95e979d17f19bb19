"""The job runner: each job on a thread of its own, failures contained, stopping that reaches running jobs."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from pippin.errors import InvalidInput
from pippin.jobs.periodic import JobRunner, PeriodicJob, ShouldStop

NOW = datetime(2026, 12, 1, tzinfo=UTC)
OFTEN = timedelta(milliseconds=1)
#: Generous bounds for waiting on other threads; no assertion depends on how fast they are.
PATIENCE = 30.0


def clock() -> datetime:
    return NOW


class Counter:
    """A job body that counts its runs and lets a test wait for the n-th."""

    def __init__(self) -> None:
        self.runs = 0
        self.changed = threading.Condition()

    def __call__(self, _should_stop: ShouldStop) -> None:
        with self.changed:
            self.runs += 1
            self.changed.notify_all()

    def wait_for(self, runs: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.runs >= runs, timeout=PATIENCE)


def test_a_job_stuck_in_a_long_run_delays_no_other_job() -> None:
    release = threading.Event()
    started = threading.Event()

    def slow(_should_stop: ShouldStop) -> None:
        started.set()
        release.wait(PATIENCE)

    quick = Counter()
    runner = JobRunner([PeriodicJob("slow", OFTEN, slow), PeriodicJob("quick", OFTEN, quick)], clock=clock)
    with runner:
        assert started.wait(PATIENCE)
        assert quick.wait_for(5), "the quick job ran while the slow one held its thread"
        assert runner.status["slow"].runs == 1 and runner.status["slow"].last_finished_at is None
        release.set()
    assert not runner.is_running()


def test_a_failing_job_is_logged_by_name_and_runs_again_without_its_message(caplog: pytest.LogCaptureFixture) -> None:
    failures = Counter()

    def broken(should_stop: ShouldStop) -> None:
        failures(should_stop)
        raise RuntimeError("secret-looking detail")

    healthy = Counter()
    runner = JobRunner([PeriodicJob("broken", OFTEN, broken), PeriodicJob("healthy", OFTEN, healthy)], clock=clock)
    with caplog.at_level(logging.ERROR, logger="pippin.jobs"), runner:
        assert failures.wait_for(3) and healthy.wait_for(3)
    status = runner.status["broken"]
    assert status.failures >= 3 and status.last_error == "RuntimeError"
    assert runner.status["healthy"].failures == 0 and runner.status["healthy"].last_error is None
    assert any(getattr(record, "fields", {}) == {"job": "broken"} for record in caplog.records)


def test_stopping_reaches_a_job_that_runs_until_asked_to_stop() -> None:
    looping = threading.Event()
    seen_stop = threading.Event()

    def patient(should_stop: ShouldStop) -> None:
        looping.set()
        while not should_stop():
            seen_stop.wait(0.01)
        seen_stop.set()

    runner = JobRunner([PeriodicJob("patient", timedelta(hours=1), patient)], clock=clock)
    runner.start()
    assert looping.wait(PATIENCE)
    runner.stop()
    assert seen_stop.is_set() and not runner.is_running()
    assert runner.status["patient"].last_finished_at == NOW


def test_a_job_waits_its_interval_between_runs() -> None:
    once = Counter()
    runner = JobRunner([PeriodicJob("hourly", timedelta(hours=1), once)], clock=clock)
    with runner:
        assert once.wait_for(1)
    assert once.runs == 1, "stopping ended the hour's wait; the job was not run again"


def test_run_once_runs_a_job_on_the_callers_thread_and_records_it() -> None:
    body = Counter()
    runner = JobRunner([PeriodicJob("manual", timedelta(hours=1), body)], clock=clock)
    runner.run_once("manual")
    assert body.runs == 1 and runner.status["manual"].runs == 1
    with pytest.raises(InvalidInput, match="no periodic job named"):
        runner.run_once("missing")


@pytest.mark.parametrize(
    "jobs",
    [
        [PeriodicJob("twice", OFTEN, Counter()), PeriodicJob("twice", OFTEN, Counter())],
        [PeriodicJob("never", timedelta(0), Counter())],
        [PeriodicJob("backwards", timedelta(seconds=-1), Counter())],
    ],
    ids=["duplicate name", "zero interval", "negative interval"],
)
def test_jobs_that_cannot_be_scheduled_are_refused_up_front(jobs: list[PeriodicJob]) -> None:
    with pytest.raises(InvalidInput):
        JobRunner(jobs, clock=clock)
