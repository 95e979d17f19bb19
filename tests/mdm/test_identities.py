"""The SCEP CA's records as device authentication reads them: read afresh at every request, bound in one write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from pippin.crypto.secrets import SecretBox
from pippin.mdm.identities import PKIIdentityStore
from pippin.pki.challenges import EnrollmentBinding, find_challenge, issue_challenge
from pippin.store.models import EnrollmentChallenge, IssuedCertificate

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
FINGERPRINT = "ab" * 32


def _issued(session: Session) -> IssuedCertificate:
    issue_challenge(session, binding=EnrollmentBinding(serial_number="C02X"), uses=1, expires_at=T0 + timedelta(1))
    challenge = session.execute(select(EnrollmentChallenge)).scalar_one()
    row = IssuedCertificate(
        serial="1f",
        fingerprint=FINGERPRINT,
        subject="CN=Pippin device identity",
        not_before=T0,
        not_after=T0 + timedelta(days=365),
        certificate_der=b"der",
        challenge_id=challenge.id,
    )
    session.add(row)
    session.flush()
    return row


def test_an_identity_is_found_by_fingerprint_in_either_case(session: Session) -> None:
    row = _issued(session)
    store = PKIIdentityStore(SecretBox(b"k" * 32))
    found = store.find(session, FINGERPRINT.upper())
    assert found is not None
    assert (found.fingerprint, found.udid, found.revoked_at, found.challenge_id) == (
        FINGERPRINT,
        None,
        None,
        row.challenge_id,
    )
    assert store.find(session, "cd" * 32) is None


def test_binding_an_identity_is_one_update_and_is_seen_at_once(session: Session) -> None:
    _issued(session)
    store = PKIIdentityStore(SecretBox(b"k" * 32))
    identity = store.find(session, FINGERPRINT)
    assert identity is not None
    run: list[str] = []
    event.listen(session.connection(), "before_cursor_execute", lambda *args: run.append(args[2]))
    store.bind(session, identity, "UDID-1")
    assert len(run) == 1 and run[0].startswith("UPDATE issued_certificates")
    again = store.find(session, FINGERPRINT)
    assert again is not None and again.udid == "UDID-1"
    challenge = find_challenge(session, identity.challenge_id or 0)
    assert challenge is not None and store.binding(session, identity).serial_number == "C02X"


def test_a_revocation_is_seen_by_the_next_request(session: Session) -> None:
    row = _issued(session)
    store = PKIIdentityStore(SecretBox(b"k" * 32))
    assert (store.find(session, FINGERPRINT) or row).revoked_at is None
    row.revoked_at = T0 + timedelta(hours=1)
    session.flush()
    found = store.find(session, FINGERPRINT)
    assert found is not None and found.revoked_at == T0 + timedelta(hours=1)
