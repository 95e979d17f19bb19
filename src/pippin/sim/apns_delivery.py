"""APNs' side of a device: push tokens, store-and-forward with coalescing, and counts of what happened.

As Apple does it (reference section 5, "200 ≠ delivered", and updates section 4 item 13): a push to a device that
is connected (here: a device waiting on ``GET /apns/tokens/{token}/next``) is handed to it at once. A push to an
offline device is kept until its ``apns-expiration`` and only the newest one per device is kept: a later push
replaces (coalesces) the one stored. A push without an expiration (or with 0, or a time already past) gets one
delivery attempt: to an offline device it is discarded. Expiry is judged on the simulator's clock.

One registry is shared by the HTTP/2 server and the HTTP app, which may run on different threads and event loops,
so every read and change holds one lock, and a waiting device is woken on its own loop
(``call_soon_threadsafe``). Tokens are also written to the simulator's database, so they outlive a restart as
Apple's do; what is stored for delivery, the waits and the counts live in memory only (a push costs no database
write, and a restart of the simulator is a restart of APNs).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select

from pippin.sim.models import SimAPNsToken
from pippin.sim.state import SimState

TOKEN_BYTES = 32
COUNTS = ("received", "delivered", "stored", "coalesced", "expired", "discarded")


class UnknownToken(LookupError):
    """No token like this was ever issued."""


class PushOutcome(StrEnum):
    delivered = "delivered"
    stored = "stored"
    discarded = "discarded"


@dataclass(frozen=True)
class Notification:
    """One accepted push, as the device receives it."""

    apns_id: str
    payload: bytes
    topic: str
    push_type: str | None
    priority: int
    expires_at: datetime | None
    received_at: datetime


@dataclass(frozen=True)
class TokenRecord:
    token: str
    topic: str
    created_at: datetime
    unregistered_at: datetime | None


@dataclass(eq=False)
class _Waiter:
    """A device waiting for its next notification, on the event loop it waits on."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    notification: Notification | None = None


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class _Registry:
    tokens: dict[str, TokenRecord] = field(default_factory=dict)
    stored: dict[str, Notification] = field(default_factory=dict)
    waiters: dict[str, deque[_Waiter]] = field(default_factory=dict)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    totals: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)


class APNsDelivery:
    """The token registry and store-and-forward shared by the provider API and the device routes."""

    def __init__(self, state: SimState) -> None:
        self._state = state
        self._lock = threading.Lock()
        self._registry = _Registry()
        with state.transaction() as session:
            for row in session.scalars(select(SimAPNsToken)):
                self._registry.tokens[row.token] = TokenRecord(
                    row.token, row.topic, row.created_at, row.unregistered_at
                )

    def now(self) -> datetime:
        return self._state.clock.now()

    # Tokens -------------------------------------------------------------------------------------------------

    def register(self, topic: str) -> TokenRecord:
        """A new token for a device that registers for ``topic`` (the MDM payload's ``Topic``)."""
        record = TokenRecord(secrets.token_hex(TOKEN_BYTES), topic, self.now(), None)
        with self._state.transaction() as session:
            session.add(SimAPNsToken(token=record.token, topic=topic, created_at=record.created_at))
        with self._lock:
            self._registry.tokens[record.token] = record
        return record

    def find(self, token: str) -> TokenRecord | None:
        with self._lock:
            return self._registry.tokens.get(token)

    def unregister(self, token: str) -> TokenRecord:
        """Make later pushes to ``token`` answer 410 Unregistered; unregistering twice keeps the first time."""
        with self._lock:
            record = self._registry.tokens.get(token)
        if record is None:
            raise UnknownToken(token)
        if record.unregistered_at is not None:
            return record
        when = self.now()
        with self._state.transaction() as session:
            row = session.get(SimAPNsToken, token)
            if row is not None and row.unregistered_at is None:
                row.unregistered_at = when
            when = row.unregistered_at if row is not None and row.unregistered_at else when
        with self._lock:
            record = TokenRecord(record.token, record.topic, record.created_at, when)
            self._registry.tokens[token] = record
            self._registry.stored.pop(token, None)
            waiters = self._registry.waiters.pop(token, deque())
        for waiter in waiters:
            waiter.loop.call_soon_threadsafe(_settle, waiter.future)
        return record

    # Pushes -------------------------------------------------------------------------------------------------

    def _count(self, token: str, name: str, amount: int = 1) -> None:
        self._registry.counts.setdefault(token, Counter())[name] += amount
        self._registry.totals[name] += amount

    def _expired(self, notification: Notification, now: datetime) -> bool:
        return notification.expires_at is None or notification.expires_at <= now

    def push(self, token: str, notification: Notification) -> PushOutcome:
        """Hand an accepted push to the waiting device, or store it until it expires (newest only), or drop it."""
        now = self.now()
        with self._lock:
            self._count(token, "received")
            waiting = self._registry.waiters.get(token)
            while waiting:
                waiter = waiting.popleft()
                if waiter.future.done():
                    continue
                waiter.notification = notification
                self._registry.stored.pop(token, None)
                try:
                    waiter.loop.call_soon_threadsafe(_settle, waiter.future)
                except RuntimeError:  # its loop is closed: that device is gone, try the next one
                    waiter.notification = None
                    continue
                return PushOutcome.delivered
            if self._expired(notification, now):
                self._count(token, "discarded")
                return PushOutcome.discarded
            if token in self._registry.stored:
                self._count(token, "coalesced")
            self._registry.stored[token] = notification
            self._count(token, "stored")
            return PushOutcome.stored

    def record_rejection(self, reason: str) -> None:
        with self._lock:
            self._registry.rejected[reason] += 1

    def _take_stored(self, token: str, now: datetime) -> Notification | None:
        notification = self._registry.stored.pop(token, None)
        if notification is not None and self._expired(notification, now):
            self._count(token, "expired")
            return None
        return notification

    async def next_notification(self, token: str, timeout: float) -> Notification | None:
        """The device's next notification: one stored for it, or the next pushed within ``timeout`` seconds.

        Raises :class:`UnknownToken`; returns None at once for an unregistered token.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            record = self._registry.tokens.get(token)
            if record is None:
                raise UnknownToken(token)
            if record.unregistered_at is not None:
                return None
            stored = self._take_stored(token, self.now())
            if stored is not None:
                self._count(token, "delivered")
                return stored
            waiter = _Waiter(loop, loop.create_future())
            self._registry.waiters.setdefault(token, deque()).append(waiter)
        handed: Notification | None = None
        gone = False
        try:
            if timeout > 0:
                await asyncio.wait({waiter.future}, timeout=timeout)
        except asyncio.CancelledError:
            gone = True  # the device hung up (or the server stops): what it was handed goes back to the store
            raise
        finally:
            with self._lock:
                _settle(waiter.future)
                handed = waiter.notification
                queue = self._registry.waiters.get(token)
                if queue is not None and waiter in queue:
                    queue.remove(waiter)
                if queue is not None and not queue:
                    del self._registry.waiters[token]
                if handed is not None and not gone:
                    self._count(token, "delivered")
                elif handed is not None and not self._expired(handed, self.now()):
                    self._registry.stored.setdefault(token, handed)
        return handed

    def waiting(self, token: str) -> int:
        """How many devices wait on ``token`` now (tests wait for a device to be connected before pushing)."""
        with self._lock:
            return sum(1 for waiter in self._registry.waiters.get(token, ()) if not waiter.future.done())

    # Counts -------------------------------------------------------------------------------------------------

    def _sweep(self, now: datetime) -> None:
        """Count stored pushes that expired unseen (expiry is lazy: nothing runs when the clock moves)."""
        for token, notification in list(self._registry.stored.items()):
            if self._expired(notification, now):
                del self._registry.stored[token]
                self._count(token, "expired")

    def stats(self, token: str | None = None) -> dict[str, object]:
        """Counts for one token, or for all with ``token=None``; ``pending`` is what is stored now."""
        now = self.now()
        with self._lock:
            self._sweep(now)
            if token is None:
                counts = self._registry.totals
                pending = len(self._registry.stored)
                extra: dict[str, object] = {
                    "tokens": len(self._registry.tokens),
                    "waiting": sum(len(queue) for queue in self._registry.waiters.values()),
                    "rejected": dict(sorted(self._registry.rejected.items())),
                }
            else:
                if token not in self._registry.tokens:
                    raise UnknownToken(token)
                counts = self._registry.counts.get(token, Counter())
                pending = 1 if token in self._registry.stored else 0
                extra = {"waiting": len(self._registry.waiters.get(token, ()))}
            return {**{name: counts.get(name, 0) for name in COUNTS}, "pending": pending, **extra}
