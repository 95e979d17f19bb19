"""Password hashing, and the bound that keeps it from starving the rest of the server.

Admins' passwords are hashed with argon2id (``argon2-cffi``'s defaults, the RFC 9106 recommendation), so a copy
of the database does not give the passwords away. That cost is the point of the hash, and also its danger: a
hash takes a noticeable fraction of a second of a whole core, so a flood of sign-in attempts, each one
hashing, would take every core and every worker thread of the server, and every other request would wait.

:class:`PasswordWork` is what a server holds for its life: at most ``at_once`` hashes run at the same time
(derived from the cores this process may use, see :func:`default_at_once`), at most ``waiting`` more sign-ins
wait for a turn, and any sign-in beyond those is refused at once with :class:`PasswordWorkBusy` (503 with
``Retry-After``), before it touches the database. So a flood costs at most ``at_once`` cores and
``at_once + waiting`` worker threads, and the API keeps answering. One client address holds at most
``per_client`` of those places, so a flood from one address cannot keep an admin elsewhere from a turn. The
CLI hashes one password per command and uses a :class:`Passwords` directly.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pippin.errors import Unavailable

#: Waiting sign-ins allowed per running hash: enough to absorb a burst of admins, not enough to pile up a flood.
WAITING_PER_HASH = 4
#: Sign-ins of one client address in progress at once: two admins behind one office address are fine.
PER_CLIENT = 2
#: What the password is checked against when there is no account, so an unknown address costs one hash too.
_ABSENT_ACCOUNT_PASSWORD = "pippin-no-such-admin"  # noqa: S105 (a known filler, not a secret)


class Passwords(Protocol):
    """Makes and checks password hashes; Pippin's is :class:`Argon2Passwords`, a test may count or block calls."""

    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class Argon2Passwords:
    """argon2id with ``argon2-cffi``'s defaults; a malformed stored hash verifies nothing instead of raising."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True


#: The hashing of commands that hash one password and end (the CLI's `pippin admin user create`).
DEFAULT_PASSWORDS: Passwords = Argon2Passwords()


class PasswordWorkBusy(Unavailable):
    """Every hashing turn is taken and the queue is full: refused at once, nothing was checked or counted."""

    code = "sign_in_busy"

    def __init__(self) -> None:
        super().__init__(
            "Pippin is busy checking other sign-ins right now; your password was not checked.",
            hint="Try again in a moment.",
        )
        #: Seconds after which a retry is likely to find a free turn (sent as ``Retry-After``).
        self.retry_after = 1


def default_at_once() -> int:
    """Half the cores this process may use, at least one: argon2 fills a core per hash, the rest serve the API."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not every platform can say which cores a process may use
        cores = os.cpu_count() or 1
    return max(1, cores // 2)


class PasswordWork:
    """``passwords`` behind a bound: at most ``at_once`` hashes run, ``waiting`` more wait, the rest are refused.

    A sign-in enters with :meth:`admitted` first (refused at once when full) and then hashes inside it, waiting
    for one of the ``at_once`` turns; :meth:`hash` and :meth:`verify` wait for a turn as well, so whatever
    calls them never runs more than ``at_once`` hashes in this process.
    """

    def __init__(
        self,
        passwords: Passwords,
        *,
        at_once: int | None = None,
        waiting: int | None = None,
        per_client: int = PER_CLIENT,
    ) -> None:
        self.passwords = passwords
        self.at_once = at_once if at_once is not None else default_at_once()
        self.waiting = waiting if waiting is not None else WAITING_PER_HASH * self.at_once
        self.per_client = per_client
        if self.at_once < 1 or self.waiting < 0 or self.per_client < 1:
            raise ValueError("at_once and per_client must be at least 1, waiting at least 0")
        self._turns = threading.Semaphore(self.at_once)
        self._lock = threading.Lock()
        self._admitted = 0
        self._by_client: dict[str, int] = {}
        self._absent_hash: str | None = None

    @property
    def admitted_now(self) -> int:
        """How many sign-ins are hashing or waiting to (for tests and health checks)."""
        with self._lock:
            return self._admitted

    @contextmanager
    def admitted(self, *, client: str | None) -> Iterator[None]:
        """A place among the ``at_once + waiting`` sign-ins in progress (at most ``per_client`` of them for one
        client address), or :class:`PasswordWorkBusy` at once."""
        key = client or ""
        with self._lock:
            if self._admitted >= self.at_once + self.waiting or self._by_client.get(key, 0) >= self.per_client:
                raise PasswordWorkBusy()
            self._admitted += 1
            self._by_client[key] = self._by_client.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1
                if self._by_client[key] <= 1:
                    del self._by_client[key]
                else:
                    self._by_client[key] -= 1

    def hash(self, password: str) -> str:
        with self._turns:
            return self.passwords.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        with self._turns:
            return self.passwords.verify(password_hash, password)

    def verify_absent(self, password: str) -> None:
        """The work of :meth:`verify` for an account that does not exist or may not sign in now: one hash of
        ``password`` against a hash made once with the same parameters, so the answer takes as long."""
        self.verify(self._absent_account_hash(), password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.passwords.needs_rehash(password_hash)

    def _absent_account_hash(self) -> str:
        # Made on first use, not at start: the CLI and most tests never need it.
        with self._lock:
            made = self._absent_hash
        if made is None:
            made = self.hash(_ABSENT_ACCOUNT_PASSWORD)
            with self._lock:
                self._absent_hash = self._absent_hash or made
        return made
