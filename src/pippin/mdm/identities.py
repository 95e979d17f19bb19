"""The identities Pippin issued to devices over SCEP, as device authentication reads and binds them.

The SCEP CA (``pippin.pki``) records every certificate it issues (``IssuedCertificate``: fingerprint, validity,
revocation, the challenge whose binding says which device it was meant for). Device authentication needs four
things of that record, named by :class:`IdentityStore`; :class:`PKIIdentityStore` reads them from the pki
package's own functions and rows, and tests may pass a store of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, cast

from cryptography import x509
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from pippin.crypto.secrets import SecretBox
from pippin.pki.authority import load_authority
from pippin.store.models import EnrollmentChallenge, IssuedCertificate


@dataclass(frozen=True)
class IdentityBinding:
    """What the enrollment challenge behind an identity was issued for (any field may be unknown)."""

    serial_number: str | None = None
    udid: str | None = None
    profile_id: int | None = None
    profile_revision: int | None = None
    primary_user_id: int | None = None
    link_id: int | None = None


@dataclass(frozen=True)
class IssuedIdentity:
    """One certificate Pippin issued, as its record stands now."""

    fingerprint: str
    #: The device the certificate speaks for, once its first Authenticate bound it.
    udid: str | None
    revoked_at: datetime | None
    challenge_id: int | None


class IdentityStore(Protocol):
    """Where device authentication finds the SCEP CA and the certificates it issued."""

    def authority_certificates(self, session: Session) -> Sequence[x509.Certificate]:
        """The CA certificates device identities must be issued by (empty: no CA yet, nothing authenticates)."""
        ...

    def find(self, session: Session, fingerprint: str) -> IssuedIdentity | None: ...

    def binding(self, session: Session, identity: IssuedIdentity) -> IdentityBinding: ...

    def bind(self, session: Session, identity: IssuedIdentity, udid: str) -> None:
        """Record that ``identity`` speaks for ``udid`` from now on (in the caller's transaction)."""
        ...


#: The four columns authentication needs, not the whole row (its DER and subject); built once, since every device
#: request runs it and building a statement costs about as much as running it.
#: Core on the table, run on the session's connection: the ORM's handling of a statement costs more than the
#: query itself here.
_ISSUED = cast(Table, IssuedCertificate.__table__)
_FIND_IDENTITY = select(_ISSUED.c.fingerprint, _ISSUED.c.udid, _ISSUED.c.revoked_at, _ISSUED.c.challenge_id).where(
    _ISSUED.c.fingerprint == bindparam("fingerprint")
)


class PKIIdentityStore:
    """:class:`IdentityStore` over ``pippin.pki`` (the SCEP CA, ``IssuedCertificate``, ``EnrollmentChallenge``).

    The CA certificate is read once and kept: it does not change for the life of a Pippin installation, and
    reading it opens the sealed authority row.
    """

    def __init__(self, box: SecretBox) -> None:
        self._box = box
        self._authority: tuple[x509.Certificate, ...] = ()

    def authority_certificates(self, session: Session) -> Sequence[x509.Certificate]:
        if not self._authority:
            authority = load_authority(session, box=self._box)
            if authority is not None:
                self._authority = (authority.certificate,)
        return self._authority

    def find(self, session: Session, fingerprint: str) -> IssuedIdentity | None:
        row = session.connection().execute(_FIND_IDENTITY, {"fingerprint": fingerprint.lower()}).one_or_none()
        if row is None:
            return None
        return IssuedIdentity(
            fingerprint=row.fingerprint, udid=row.udid, revoked_at=row.revoked_at, challenge_id=row.challenge_id
        )

    def binding(self, session: Session, identity: IssuedIdentity) -> IdentityBinding:
        if identity.challenge_id is None:
            return IdentityBinding()
        challenge = session.get(EnrollmentChallenge, identity.challenge_id)
        if challenge is None:
            return IdentityBinding()
        return IdentityBinding(
            serial_number=challenge.serial_number,
            udid=challenge.udid,
            profile_id=challenge.profile_id,
            profile_revision=challenge.profile_revision,
            primary_user_id=challenge.primary_user_id,
            link_id=challenge.link_id,
        )

    def bind(self, session: Session, identity: IssuedIdentity, udid: str) -> None:
        # One UPDATE by fingerprint: the row was read moments ago by find(), in this transaction.
        session.execute(
            update(IssuedCertificate).where(IssuedCertificate.fingerprint == identity.fingerprint).values(udid=udid)
        )
