"""Sign-in counters and passwords for tests of what admins do to an account: an account blocked from an address,
and checks."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.admin.passwords import DEFAULT_PASSWORDS
from pippin.admin.sign_in_throttle import ACCOUNT_ADDRESS_LIMIT, account_key, claim_attempt, counter_secret
from pippin.crypto.secrets import SecretBox
from pippin.store.models import AdminUser, SignInThrottle, utcnow

GUESSER = "198.51.100.7"


def block_account(session: Session, box: SecretBox, email: str, *, address: str = GUESSER) -> None:
    """Count as many failed attempts for ``email`` from ``address`` as blocks it there."""
    secret, now = counter_secret(box), utcnow()
    for _ in range(ACCOUNT_ADDRESS_LIMIT):
        claim_attempt(session, secret=secret, account=email, address=address, now=now)
    assert claim_attempt(session, secret=secret, account=email, address=address, now=now).refused_until is not None


def blocked_counters(session: Session, box: SecretBox, email: str) -> int:
    """How many of the account's counters refuse attempts now."""
    query = select(func.count()).where(
        SignInThrottle.account_key == account_key(counter_secret(box), email), SignInThrottle.blocked_until > utcnow()
    )
    return int(session.scalar(query) or 0)


def password_is(session: Session, email: str, password: str) -> bool:
    """Whether ``password`` is the account's password now (its stored hash, checked as sign-in checks it)."""
    user = session.scalars(select(AdminUser).where(AdminUser.email == email)).one()
    return DEFAULT_PASSWORDS.verify(user.password_hash, password)
