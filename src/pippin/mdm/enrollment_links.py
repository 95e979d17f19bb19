"""Manual enrollment links: an enrollment profile any device may install, N times, until a moment.

For test devices, re-enrollment and load tests, as other MDMs offer: `pippin enroll link --uses N --expires D`
prints ``{server_url}/mdm/enroll/links/{token}``, which serves the profile (``device/enroll_links.py``);
`pippin enroll profile --uses N -o FILE` writes the same profile to a file. Such a profile's SCEP challenge
(``pippin.pki.challenges``) is bound to the link (``link_id``), allows ``uses`` identities and expires with the
link; the challenge's row counts what is left. The link's token is kept as its SHA-256 only. The clear challenge
is sealed with the master key, so that each visit builds the profile afresh (the push topic and server
identity in force then) with the same challenge, which a profile cannot do without. A device enrolled this way
has an enrollment and no DEP record; its profile is removable, as nothing makes it Apple's to lock.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.config import Settings
from pippin.crypto.keys import KeyGenerator
from pippin.crypto.secrets import SecretBox
from pippin.errors import InvalidInput, NotFound
from pippin.mdm.enrollment_profile import build_profile_plist, push_topic
from pippin.pki.authority import ensure_authority
from pippin.pki.challenges import EnrollmentBinding, issue_challenge
from pippin.pki.profile_signing import sign_profile
from pippin.pki.server_identity import ensure_server_identity
from pippin.store.models import EnrollmentChallenge, EnrollmentLink, utcnow

MAX_USES = 10_000
MAX_LIFETIME = timedelta(days=90)
MIN_LIFETIME = timedelta(minutes=1)
#: The token's length in the URL (``secrets.token_urlsafe(32)``); anything else is refused before any lookup.
TOKEN_CHARS = 43
LINK_PATH = "/mdm/enroll/links/"
_DURATION = re.compile(r"(\d{1,6})([mhdw])")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


class EnrollmentLinkRead(BaseModel):
    """A link (or a profile written to a file) as admins see it: never its token or challenge."""

    id: int
    kind: str = Field(description="link (served at a URL) or file (a profile written by `pippin enroll profile`).")
    uses: int = Field(description="Enrollments the profile allowed when it was made.")
    uses_left: int = Field(description="Enrollments it still allows (0 once used up).")
    created_at: datetime
    expires_at: datetime
    created_by: str
    active: bool = Field(description="Whether a device may still enroll with it: uses left and not expired.")


class LinkRefused(NotFound):
    """The link is unknown, expired or used up: no profile is served."""

    code = "enrollment_link_refused"

    def __init__(self, reason: str, *, gone: bool) -> None:
        super().__init__(f"This enrollment link {reason}.", hint="Ask your IT department for a new link.")
        #: Whether the link existed (expired or used up: 410) rather than never (404).
        self.gone = gone


def parse_lifetime(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d`` or ``2w`` as a lifetime from one minute to 90 days, or :class:`InvalidInput`."""
    matched = _DURATION.fullmatch(text.strip().lower()) if text.isascii() else None
    if matched is None:
        raise InvalidInput(
            f"{text[:40]!r} is not a duration.", hint="Give a number and a unit: 30m, 12h, 7d or 2w (at most 90d)."
        )
    lifetime = int(matched.group(1)) * _UNITS[matched.group(2)]
    if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
        raise InvalidInput("A link lasts from 1 minute to 90 days.", hint="e.g. --expires 7d.")
    return lifetime


def check_uses(uses: int) -> int:
    if not 1 <= uses <= MAX_USES:
        raise InvalidInput(f"--uses must be from 1 to {MAX_USES}.", hint="One use enrolls one device once.")
    return uses


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def link_url(settings: Settings, token: str) -> str:
    return settings.server_url.rstrip("/") + LINK_PATH + token


def _uses_left(session: Session, link_ids: list[int]) -> dict[int, int]:
    if not link_ids:
        return {}
    rows = session.execute(
        select(EnrollmentChallenge.link_id, EnrollmentChallenge.uses_left).where(
            EnrollmentChallenge.link_id.in_(link_ids)
        )
    )
    return {link_id: uses_left for link_id, uses_left in rows if link_id is not None}


def _read(link: EnrollmentLink, uses_left: int, now: datetime) -> EnrollmentLinkRead:
    return EnrollmentLinkRead(
        id=link.id,
        kind="link" if link.token_sha256 is not None else "file",
        uses=link.uses,
        uses_left=uses_left,
        created_at=link.created_at,
        expires_at=link.expires_at,
        created_by=link.created_by,
        active=uses_left > 0 and link.expires_at > now,
    )


def _profile(
    session: Session,
    *,
    settings: Settings,
    box: SecretBox,
    generate_key: KeyGenerator,
    challenge: str,
    link_id: int,
    now: datetime,
) -> bytes:
    topic = push_topic(session, now=now)
    authority = ensure_authority(session, box=box, generate_key=generate_key, now=now)
    identity = ensure_server_identity(session, box=box, generate_key=generate_key, now=now)
    plist = build_profile_plist(
        settings=settings,
        topic=topic,
        challenge=challenge,
        scep_ca=authority.certificate,
        binding=EnrollmentBinding(link_id=link_id),
        removal_disallowed=False,
    )
    return sign_profile(identity, plist)


def create_link(
    session: Session,
    *,
    settings: Settings,
    box: SecretBox,
    generate_key: KeyGenerator,
    uses: int,
    lifetime: timedelta,
    actor: Actor,
    with_url: bool = True,
    now: datetime | None = None,
) -> tuple[EnrollmentLinkRead, str | None, bytes]:
    """A new link (``with_url``) or file profile allowing ``uses`` enrollments for ``lifetime``, in the caller's
    transaction: its description, its URL (shown once; ``None`` for a file) and the signed profile.

    Refuses before writing anything when Pippin has no push certificate (``NoPushCertificate``).
    """
    check_uses(uses)
    if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
        raise InvalidInput("A link lasts from 1 minute to 90 days.", hint="e.g. --expires 7d.")
    moment = now or utcnow()
    push_topic(session, now=moment)
    token = secrets.token_urlsafe(32) if with_url else None
    link = EnrollmentLink(
        token_sha256=_digest(token) if token else None,
        uses=uses,
        created_at=moment,
        expires_at=moment + lifetime,
        created_by=actor.name[:320],
        challenge_encrypted=b"",
    )
    session.add(link)
    session.flush()
    challenge = issue_challenge(
        session, binding=EnrollmentBinding(link_id=link.id), uses=uses, expires_at=link.expires_at
    )
    link.challenge_encrypted = box.encrypt(challenge.encode("ascii"))
    profile = _profile(
        session, settings=settings, box=box, generate_key=generate_key, challenge=challenge, link_id=link.id, now=moment
    )
    audit.record_event(
        session,
        actor=actor,
        action=AuditAction.enrollment_link_create,
        target=f"enrollment link {link.id}",
        detail={"kind": "link" if token else "file", "uses": uses, "expires_at": link.expires_at.isoformat()},
        now=moment,
    )
    return _read(link, uses, moment), (link_url(settings, token) if token else None), profile


def link_profile(
    session: Session, *, settings: Settings, box: SecretBox, generate_key: KeyGenerator, token: str, now: datetime
) -> bytes:
    """The signed profile of the link whose URL ends in ``token``, or :class:`LinkRefused` saying why not."""
    if len(token) != TOKEN_CHARS or not token.isascii() or not all(c.isalnum() or c in "-_" for c in token):
        raise LinkRefused("does not exist", gone=False)
    digest = _digest(token)
    link = session.scalars(select(EnrollmentLink).where(EnrollmentLink.token_sha256 == digest)).one_or_none()
    if link is None or link.token_sha256 is None or not hmac.compare_digest(link.token_sha256, digest):
        raise LinkRefused("does not exist", gone=False)
    if link.expires_at <= now:
        raise LinkRefused("has expired", gone=True)
    if _uses_left(session, [link.id]).get(link.id, 0) <= 0:
        raise LinkRefused("has been used up", gone=True)
    challenge = box.decrypt(link.challenge_encrypted).decode("ascii")
    return _profile(
        session, settings=settings, box=box, generate_key=generate_key, challenge=challenge, link_id=link.id, now=now
    )


def list_links(session: Session, *, now: datetime | None = None) -> list[EnrollmentLinkRead]:
    """Every link and file profile, newest first, with the uses left."""
    moment = now or utcnow()
    links = list(session.scalars(select(EnrollmentLink).order_by(EnrollmentLink.id.desc())))
    left = _uses_left(session, [link.id for link in links])
    return [_read(link, left.get(link.id, 0), moment) for link in links]
