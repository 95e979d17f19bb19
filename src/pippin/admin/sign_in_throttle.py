"""How many passwords may be tried, by whom, for which account: the sign-in throttle.

Two goals pull apart. A guesser must not get many tries; and a stranger must not be able to keep an admin out
(a plain per-account lock-out lets anyone lock any admin out with five wrong passwords). So attempts are counted
per client address and per account-and-address, and the account as a whole only slows down, and only for the
addresses that never signed in to it:

- **address** (:data:`ADDRESS_LIMIT` attempts per :data:`WINDOW`, whatever the accounts): an address that
  tries too often, one account or many (password spraying), is refused for :data:`BLOCK`.
- **account from an address** (:data:`ACCOUNT_ADDRESS_LIMIT` per window): guessing one account from one
  address is refused for :data:`BLOCK`, for that address only; the admin elsewhere is not affected.
- **account from unfamiliar addresses** (:data:`ACCOUNT_LIMIT` per window): when many addresses guess at one
  account (a botnet), each has few tries, but together they would have many. Past the limit, addresses that
  never signed in to that account get one attempt per :data:`ACCOUNT_SPACING` between them. An address from
  which the account signed in successfully within :data:`FAMILIAR_FOR` is *familiar*: it is not counted here
  and not slowed down, so the admin at their usual address signs in whatever the botnet does.

Every attempt is counted before its password is checked, in one short transaction that locks the counters
(always in the same order, so two sign-ins never wait on each other in a circle), and a successful one is
given back afterwards. So a burst of parallel guesses cannot all slip through before the first is counted, and
no transaction is held open while the password is hashed. A refused attempt is not counted: the refusal does
not grow by being retried.

Counters are kept for the account *as typed*, whether or not such an admin exists, so the answers (status,
body, ``Retry-After``) and the work behind them are the same for an unknown address and a real one. They live
in the database, so every Pippin server on one database shares them. An IPv6 client counts as its /64 network,
the block one subscriber is usually given, or a guesser would have a new address for every guess. What the
throttle cannot tell apart: a guesser behind the same address as the admin (one office NAT) uses up that
address's tries for both.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pippin.crypto.secrets import SecretBox
from pippin.store.models import SignInThrottle, ThrottleScope

WINDOW = timedelta(minutes=15)
ADDRESS_LIMIT = 20
ACCOUNT_ADDRESS_LIMIT = 5
BLOCK = timedelta(minutes=15)
ACCOUNT_LIMIT = 20
ACCOUNT_SPACING = timedelta(seconds=30)
FAMILIAR_FOR = timedelta(days=90)

#: The order counters are locked in: every sign-in takes them in this order, so none waits in a circle.
_LOCK_ORDER = (ThrottleScope.address, ThrottleScope.account_address, ThrottleScope.account)
_LIMITS: dict[ThrottleScope, tuple[int, timedelta]] = {
    ThrottleScope.address: (ADDRESS_LIMIT, BLOCK),
    ThrottleScope.account_address: (ACCOUNT_ADDRESS_LIMIT, BLOCK),
    ThrottleScope.account: (ACCOUNT_LIMIT, ACCOUNT_SPACING),
}
#: What the counters' names are keyed with (``SecretBox.derive_key``).
KEY_PURPOSE = "sign-in throttle counters"
#: The address counted for a request whose client is not known (no peer address): all such share one counter.
UNKNOWN_ADDRESS = "unknown"
#: The IPv6 prefix counted as one client.
IPV6_CLIENT_PREFIX = 64


@dataclass(frozen=True)
class Attempt:
    """One counted (or refused) sign-in attempt, as :func:`claim_attempt` decided it."""

    #: Set when the attempt is refused: the password is not to be accepted, retry after this moment.
    refused_until: datetime | None
    #: The counters this attempt was counted in, and those whose block it started, to give back on success.
    counted: tuple[int, ...] = ()
    started_blocks: tuple[int, ...] = ()
    #: The scopes whose block this attempt started (for the audit log).
    blocked_scopes: tuple[ThrottleScope, ...] = ()
    #: The account-and-address counter, which remembers a success from this address.
    account_address_id: int | None = None


def counter_key(secret: bytes, scope: ThrottleScope, *, account: str, address: str) -> str:
    """The stored name of one counter: an HMAC, so neither the account as typed nor the address is kept."""
    parts = {
        ThrottleScope.address: ("", address),
        ThrottleScope.account_address: (account, address),
        ThrottleScope.account: (account, ""),
    }[scope]
    message = "\x00".join((scope.value, *parts)).encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def counter_secret(box: SecretBox) -> bytes:
    """The key the counters' names are made with, derived from the master key."""
    return box.derive_key(KEY_PURPOSE)


def account_key(secret: bytes, account: str) -> str:
    """The key that names ``account`` (as typed) in its counters: its own counter's key."""
    return counter_key(secret, ThrottleScope.account, account=account.strip().lower(), address="")


def counted_address(address: str | None) -> str:
    """The client as the throttle counts it: an IPv4 address itself, an IPv6 address's /64 network."""
    if not address:
        return UNKNOWN_ADDRESS
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:  # not an address (a test client's name): counted as written
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False))
    return str(parsed)


def _locked_counter(
    session: Session, scope: ThrottleScope, key: str, now: datetime, *, account: str | None
) -> SignInThrottle:
    """The counter, locked for the rest of the transaction (PostgreSQL; SQLite holds its write lock anyway)."""
    query = select(SignInThrottle).where(SignInThrottle.scope == scope, SignInThrottle.key == key).with_for_update()
    found = session.scalars(query).one_or_none()
    if found is not None:
        return found
    counter = SignInThrottle(scope=scope, key=key, attempts=0, window_started_at=now, account_key=account)
    try:
        with session.begin_nested():
            session.add(counter)
    except IntegrityError:  # another server counted the first attempt of this key meanwhile
        return session.scalars(query).one()
    return counter


def _active(until: datetime | None, now: datetime) -> bool:
    return until is not None and until > now


def claim_attempt(session: Session, *, secret: bytes, account: str, address: str | None, now: datetime) -> Attempt:
    """Count one attempt for ``account`` (as typed) from ``address``, or refuse it; the caller commits at once.

    Refused when the address is blocked, when the account is blocked for this address, or when the account is
    slowed down and this address is not familiar. Otherwise counted, starting any block its count reaches.
    """
    typed = account.strip().lower()
    client = counted_address(address)
    named = account_key(secret, typed)
    by_address, by_account_address, by_account = (
        _locked_counter(
            session,
            scope,
            counter_key(secret, scope, account=typed, address=client),
            now,
            account=None if scope is ThrottleScope.address else named,
        )
        for scope in _LOCK_ORDER
    )
    for counter in (by_address, by_account_address, by_account):
        if counter.window_started_at + WINDOW <= now:
            counter.attempts = 0
            counter.window_started_at = now
    succeeded_at = by_account_address.succeeded_at
    familiar = succeeded_at is not None and succeeded_at + FAMILIAR_FOR > now
    applying = [by_address, by_account_address] + ([] if familiar else [by_account])
    blocks = [counter.blocked_until for counter in applying if _active(counter.blocked_until, now)]
    if blocks:
        session.flush()
        sweep(session, now=now)
        return Attempt(refused_until=max(block for block in blocks if block is not None))
    started: list[SignInThrottle] = []
    for counter in applying:
        counter.attempts += 1
        limit, block = _LIMITS[counter.scope]
        if counter.attempts >= limit:
            counter.blocked_until = now + block
            started.append(counter)
    session.flush()
    sweep(session, now=now)
    return Attempt(
        refused_until=None,
        counted=tuple(counter.id for counter in applying),
        started_blocks=tuple(counter.id for counter in started),
        blocked_scopes=tuple(counter.scope for counter in started),
        account_address_id=by_account_address.id,
    )


def give_back(session: Session, *, attempt: Attempt, now: datetime) -> None:
    """A counted attempt succeeded: it no longer counts, the blocks it started end, and the address is familiar.

    The account's tries from this address start again from zero; the address's and the account's counters only
    lose this one attempt, so a guesser who owns one account cannot wipe out their count by signing in to it.
    """
    for counter_id in attempt.counted:  # in the order they were locked in
        counter = session.get(SignInThrottle, counter_id, with_for_update=True)
        if counter is None:
            continue
        counter.attempts = max(0, counter.attempts - 1)
        if counter_id in attempt.started_blocks:
            counter.blocked_until = None
        if counter_id == attempt.account_address_id:
            counter.attempts = 0
            counter.blocked_until = None
            counter.succeeded_at = now
    session.flush()


def release_account(session: Session, *, secret: bytes, account: str, now: datetime) -> bool:
    """Forget ``account``'s counters from every address (an admin unlocks it); True when one was blocking.

    The addresses' own counters stay: an address that guessed at many accounts is still refused.
    """
    named = account_key(secret, account)
    counters = session.scalars(
        select(SignInThrottle).where(SignInThrottle.account_key == named).with_for_update()
    ).all()
    blocking = any(_active(counter.blocked_until, now) for counter in counters)
    for counter in counters:
        if counter.succeeded_at is None:
            session.delete(counter)
        else:  # keep the address familiar
            counter.attempts, counter.blocked_until = 0, None
    session.flush()
    return blocking


def sweep(session: Session, *, now: datetime) -> None:
    """Forget counters that no longer matter: window over, no block running, no recent success to remember.

    Rows another transaction holds are skipped (``SKIP LOCKED`` on PostgreSQL), so the sweep never waits and
    never takes part in a wait; it is the last statement of the claim's transaction for the same reason.
    """
    stale = (
        select(SignInThrottle.id)
        .where(
            SignInThrottle.window_started_at <= now - WINDOW,
            or_(SignInThrottle.blocked_until.is_(None), SignInThrottle.blocked_until <= now),
            or_(SignInThrottle.succeeded_at.is_(None), SignInThrottle.succeeded_at <= now - FAMILIAR_FOR),
        )
        .with_for_update(skip_locked=True)
    )
    session.execute(
        delete(SignInThrottle).where(SignInThrottle.id.in_(stale)).execution_options(synchronize_session=False)
    )
