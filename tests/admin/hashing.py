"""Password hashing that tests can watch: count the hashes a sign-in runs, or hold them until told."""

from __future__ import annotations

import threading

from pippin.admin.passwords import Passwords


class CountingPasswords:
    """Real (cheap) hashing that counts each call: the work of a sign-in, measured without a clock."""

    def __init__(self, inner: Passwords) -> None:
        self.inner = inner
        self.hashed = 0
        self.verified = 0
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        with self._lock:
            self.hashed += 1
        return self.inner.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        with self._lock:
            self.verified += 1
        return self.inner.verify(password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.inner.needs_rehash(password_hash)


class HeldPasswords(CountingPasswords):
    """Each verification waits until :attr:`release` is set: sign-ins stay in flight as long as a test needs."""

    def __init__(self, inner: Passwords) -> None:
        super().__init__(inner)
        self.release = threading.Event()
        self.running = 0
        self._running_lock = threading.Lock()

    def verify(self, password_hash: str, password: str) -> bool:
        with self._running_lock:
            self.running += 1
        try:
            if not self.release.wait(timeout=30):
                raise TimeoutError("the test never released the held hashes")
            return super().verify(password_hash, password)
        finally:
            with self._running_lock:
                self.running -= 1
