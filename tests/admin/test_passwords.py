"""Password hashing: argon2 that never raises on a bad stored hash, and the bound on hashes in progress."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pippin.admin.passwords import Argon2Passwords, PasswordWork, PasswordWorkBusy, default_at_once
from tests.admin.hashing import CountingPasswords, HeldPasswords
from tests.servers import cheap_argon2


def test_argon2_checks_its_own_hashes_and_refuses_anything_else() -> None:
    passwords = cheap_argon2()
    stored = passwords.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "correct horse battery staple")
    assert not passwords.verify(stored, "Correct horse battery staple")
    assert not passwords.verify("not a hash at all", "correct horse battery staple")
    assert not passwords.needs_rehash(stored)
    assert Argon2Passwords().needs_rehash(stored), "a hash of weaker parameters than the defaults is renewed"
    assert Argon2Passwords().needs_rehash("not a hash at all")


def test_at_once_comes_from_the_cores_and_is_at_least_one() -> None:
    assert default_at_once() >= 1
    assert PasswordWork(cheap_argon2()).waiting == 4 * PasswordWork(cheap_argon2()).at_once
    with pytest.raises(ValueError, match="at least"):
        PasswordWork(cheap_argon2(), at_once=0)


def test_an_absent_account_costs_one_verification_against_a_hash_made_once() -> None:
    counting = CountingPasswords(cheap_argon2())
    work = PasswordWork(counting, at_once=1, waiting=0)
    for _ in range(3):
        work.verify_absent("whatever was typed")
    assert (counting.hashed, counting.verified) == (1, 3)


@contextmanager
def _in_flight(work: PasswordWork, held: HeldPasswords, clients: list[str]) -> Iterator[list[BaseException]]:
    """``len(clients)`` sign-ins admitted and hashing or waiting (held), released when the block ends."""
    stored = cheap_argon2().hash("correct horse battery staple")
    errors: list[BaseException] = []
    entered = threading.Semaphore(0)

    def sign_in(client: str) -> None:
        try:
            with work.admitted(client=client):
                entered.release()
                work.verify(stored, "correct horse battery staple")
        except BaseException as error:
            errors.append(error)
            entered.release()

    threads = [threading.Thread(target=sign_in, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for _ in clients:
        assert entered.acquire(timeout=10)
    try:
        yield errors
    finally:
        held.release.set()
        for thread in threads:
            thread.join(timeout=10)


def test_at_most_at_once_hash_while_waiting_more_and_the_next_is_refused_at_once() -> None:
    held = HeldPasswords(cheap_argon2())
    work = PasswordWork(held, at_once=2, waiting=3, per_client=10)
    with _in_flight(work, held, [f"192.0.2.{n}" for n in range(5)]) as errors:
        assert errors == [] and work.admitted_now == 5
        assert held.running == 2, "only at_once hashes run; the others wait for a turn"
        with pytest.raises(PasswordWorkBusy) as busy, work.admitted(client="198.51.100.1"):
            pass
        assert busy.value.retry_after == 1 and held.verified == 0
    assert errors == [] and held.verified == 5 and work.admitted_now == 0
    with work.admitted(client="198.51.100.1"):
        pass


def test_one_address_holds_at_most_per_client_places() -> None:
    held = HeldPasswords(cheap_argon2())
    work = PasswordWork(held, at_once=1, waiting=10, per_client=2)
    with _in_flight(work, held, ["203.0.113.66", "203.0.113.66"]):
        with pytest.raises(PasswordWorkBusy), work.admitted(client="203.0.113.66"):
            pass
        with work.admitted(client="198.51.100.7"):  # the admin elsewhere still gets a place
            assert work.admitted_now == 3
