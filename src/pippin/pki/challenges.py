"""One-time SCEP challenges: made for one enrollment binding, redeemed once per certificate, then refused.

An enrollment profile's SCEP payload carries a challenge (reference ``apple-mdm-protocol.md`` section 1.3,
"use a per-enrollment one-time challenge"), which the device copies into its CSR's ``challengePassword``. The
challenge is random and URL-safe; only its SHA-256 is stored, so neither the database nor a log holds anything a
device could enroll with. Redeeming takes one use in a single conditional UPDATE, so two requests racing for the
last use cannot both win, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pippin.errors import InvalidInput
from pippin.store.models import EnrollmentChallenge

#: 32 random bytes: far past guessing, and short enough for a CSR attribute (PrintableString/UTF8String).
CHALLENGE_BYTES = 32
#: The longest challenge a CSR may present that is worth hashing and looking up; longer ones are refused at once.
MAX_CHALLENGE_LENGTH = 255


@dataclass(frozen=True)
class EnrollmentBinding:
    """Whom an enrollment was handed out to: a DEP device, a signed-in user's device, or a manual link."""

    serial_number: str | None = None
    udid: str | None = None
    profile_id: int | None = None
    profile_revision: int | None = None
    primary_user_id: int | None = None
    link_id: int | None = None


class RefusalReason(StrEnum):
    unknown = "unknown"
    used_up = "used_up"
    expired = "expired"


class ChallengeRefused(InvalidInput):
    """The challenge is not one Pippin issued, has no use left, or has expired; nothing was changed."""

    code = "challenge_refused"

    def __init__(self, reason: RefusalReason) -> None:
        messages = {
            RefusalReason.unknown: "The enrollment challenge is not one this server issued.",
            RefusalReason.used_up: "The enrollment challenge has already been used.",
            RefusalReason.expired: "The enrollment challenge has expired.",
        }
        super().__init__(messages[reason], hint="Install a fresh enrollment profile and enroll again.")
        self.reason = reason


def challenge_hash(challenge: str) -> str:
    """The stored form of ``challenge``: SHA-256 of its UTF-8 bytes, lowercase hex."""
    return hashlib.sha256(challenge.encode("utf-8", errors="surrogatepass")).hexdigest()


def issue_challenge(session: Session, *, binding: EnrollmentBinding, uses: int, expires_at: datetime) -> str:
    """A new challenge for ``binding``, good for ``uses`` certificates until ``expires_at``; only its hash is kept."""
    if uses < 1:
        raise InvalidInput("An enrollment challenge must allow at least one use.")
    challenge = secrets.token_urlsafe(CHALLENGE_BYTES)
    session.add(
        EnrollmentChallenge(
            challenge_hash=challenge_hash(challenge),
            serial_number=binding.serial_number,
            udid=binding.udid,
            profile_id=binding.profile_id,
            profile_revision=binding.profile_revision,
            primary_user_id=binding.primary_user_id,
            link_id=binding.link_id,
            uses_left=uses,
            expires_at=expires_at,
        )
    )
    session.flush()
    return challenge


def redeem_challenge(session: Session, challenge: str, *, now: datetime) -> EnrollmentChallenge:
    """The challenge's row with one use taken, or :class:`ChallengeRefused`.

    Called in the transaction that records the certificate issued against it: if that transaction rolls back,
    the use comes back with it.
    """
    if not challenge or len(challenge) > MAX_CHALLENGE_LENGTH:
        raise ChallengeRefused(RefusalReason.unknown)
    digest = challenge_hash(challenge)
    # The row comes back with the UPDATE itself (RETURNING, on SQLite and PostgreSQL): no second read.
    taken = session.execute(
        update(EnrollmentChallenge)
        .where(
            EnrollmentChallenge.challenge_hash == digest,
            EnrollmentChallenge.uses_left > 0,
            EnrollmentChallenge.expires_at > now,
        )
        .values(uses_left=EnrollmentChallenge.uses_left - 1, last_used_at=now)
        .returning(EnrollmentChallenge)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).scalar_one_or_none()
    if taken is None:
        row = session.execute(select(EnrollmentChallenge).where(EnrollmentChallenge.challenge_hash == digest)).scalar()
        if row is None:
            raise ChallengeRefused(RefusalReason.unknown)
        raise ChallengeRefused(RefusalReason.used_up if row.uses_left <= 0 else RefusalReason.expired)
    return taken


def find_challenge(session: Session, challenge_id: int) -> EnrollmentChallenge | None:
    return session.get(EnrollmentChallenge, challenge_id)


def binding_of(row: EnrollmentChallenge) -> EnrollmentBinding:
    """The binding a challenge row (and so each certificate issued against it) carries."""
    return EnrollmentBinding(
        serial_number=row.serial_number,
        udid=row.udid,
        profile_id=row.profile_id,
        profile_revision=row.profile_revision,
        primary_user_id=row.primary_user_id,
        link_id=row.link_id,
    )
