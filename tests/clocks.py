"""A clock a test sets and moves, for the services that take one (``clock=``), so no test waits on the real time."""

from __future__ import annotations

from datetime import datetime, timedelta


class Clock:
    """Answers ``now`` until the test moves it with :meth:`advance` (or sets ``now``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
