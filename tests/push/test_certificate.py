"""The push certificate from request to renewal: what is accepted, what is refused (changing nothing), and why."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import select, text

from pippin.crypto.keys import generate_private_key
from pippin.crypto.pem import fingerprint
from pippin.crypto.secrets import SecretBox
from pippin.errors import Conflict, InvalidInput, PippinError
from pippin.push import certificate as certificate_service
from pippin.push import status as status_service
from pippin.push.schemas import PushCertificateStatus, RequestKind
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import AuditEvent, Enrollment, EnrollmentStatus
from tests.crypto.openssl_tokens import inner_token_text, openssl_encrypt
from tests.push.apple_ca import authority, issue_push_certificate, issue_vendor_certificate, new_topic, pem
from tests.push.conftest import APPLE_ID, activate, make_request, pending_csr, snapshot, upload


def _status(factory: SessionFactory, now: datetime | None = None) -> status_service.PushCertificateRead:
    with transaction(factory) as session:
        return status_service.read_status(session, now=now)


def test_nothing_is_not_started_and_says_how_to_begin(session_factory: SessionFactory) -> None:
    found = _status(session_factory)
    assert found.status == PushCertificateStatus.not_started and found.topic is None and found.vendor is None
    assert "pippin push csr" in found.next_step


def test_a_request_then_apples_certificate_makes_it_active(session_factory: SessionFactory, box: SecretBox) -> None:
    made = make_request(session_factory, box)
    assert made.kind == RequestKind.csr and not made.reused
    assert any("No MDM vendor certificate" in warning for warning in made.warnings)
    assert made.content.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    assert _status(session_factory).status == PushCertificateStatus.awaiting_certificate

    topic = new_topic()
    certificate = issue_push_certificate(made.content, topic=topic)
    result = upload(session_factory, box, pem(certificate), apple_id="  Admin@Example.com ")
    assert not result.renewal and not result.topic_replaced and result.warnings == []
    shown = result.certificate
    assert shown.status == PushCertificateStatus.active and shown.topic == topic
    assert shown.apple_id == "Admin@Example.com" and shown.days_left in (364, 365)
    assert shown.not_after == certificate.not_valid_after_utc and shown.pending_request_at is None

    with transaction(session_factory) as session:
        identity = certificate_service.load_push_identity(session, box=box)
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert identity is not None and identity.topic == topic and identity.fingerprint == shown.fingerprint
    key = serialization.load_pem_private_key(identity.private_key_pem, password=None)
    assert x509.load_pem_x509_certificate(identity.certificate_pem).public_key() == key.public_key()
    assert b"PRIVATE KEY" in identity.private_key_pem and "PRIVATE KEY" not in repr(identity)
    assert actions == ["push.request.create", "push.certificate.upload"]


def test_asking_again_hands_out_the_same_request_until_a_new_key_is_asked_for(
    session_factory: SessionFactory, box: SecretBox
) -> None:
    first = make_request(session_factory, box)
    again = make_request(session_factory, box)
    assert again.reused and again.content == first.content
    fresh = make_request(session_factory, box, new_key=True)
    assert not fresh.reused and fresh.content != first.content
    # The certificate Apple issues for the replaced request no longer has a key here.
    stale = issue_push_certificate(first.content)
    with pytest.raises(InvalidInput, match="made for another request"):
        upload(session_factory, box, pem(stale))


def test_no_certificate_before_any_request(session_factory: SessionFactory, box: SecretBox) -> None:
    certificate = issue_push_certificate(_foreign_csr())
    with pytest.raises(Conflict, match="no push certificate request") as refused:
        upload(session_factory, box, pem(certificate))
    assert "pippin push csr" in str(refused.value)
    assert _status(session_factory).status == PushCertificateStatus.not_started


def _foreign_csr() -> bytes:
    """A CSR of a key Pippin never made (another request)."""
    key = generate_private_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def test_a_renewal_keeps_the_topic_and_swaps_the_key(session_factory: SessionFactory, box: SecretBox) -> None:
    topic = new_topic()
    first = activate(session_factory, box, topic=topic)
    made = make_request(session_factory, box, unsigned=True)
    assert not made.reused  # a renewal is a new request
    waiting = _status(session_factory)
    assert waiting.status == PushCertificateStatus.active and waiting.pending_request_at is not None

    renewed = issue_push_certificate(made.content, topic=topic)
    result = upload(session_factory, box, pem(renewed))
    assert result.renewal and not result.topic_replaced
    assert result.certificate.topic == topic and result.certificate.fingerprint != fingerprint(first)
    with transaction(session_factory) as session:
        identity = certificate_service.load_push_identity(session, box=box)
    assert identity is not None and identity.fingerprint == fingerprint(renewed)
    # The old certificate's key is gone: uploading the old certificate again is "another request".
    with pytest.raises(InvalidInput, match="made for another request"):
        upload(session_factory, box, pem(first))


def test_another_topic_at_renewal_is_refused_with_what_to_do(session_factory: SessionFactory, box: SecretBox) -> None:
    topic = new_topic()
    activate(session_factory, box, topic=topic)
    made = make_request(session_factory, box, unsigned=True)
    other = issue_push_certificate(made.content)
    before = snapshot(session_factory)
    with pytest.raises(Conflict) as refused:
        upload(session_factory, box, pem(other))
    said = str(refused.value)
    assert f"renew the certificate with topic {topic} at https://identity.apple.com using Apple ID {APPLE_ID}" in (
        said.replace("Renew", "renew")
    )
    assert "orphans every enrolled device" in said and "--replace-topic" in said
    assert snapshot(session_factory) == before


def test_replacing_the_topic_on_purpose_is_allowed_warned_and_audited(
    session_factory: SessionFactory, box: SecretBox
) -> None:
    old = new_topic()
    activate(session_factory, box, topic=old)
    with transaction(session_factory) as session:
        session.add(Enrollment(udid="UDID-1", status=EnrollmentStatus.enrolled))
    made = make_request(session_factory, box, unsigned=True)
    new = issue_push_certificate(made.content)
    result = upload(session_factory, box, pem(new), replace_topic=True)
    assert result.topic_replaced and not result.renewal
    assert any("the 1 enrolled devices can no longer be woken" in warning for warning in result.warnings)
    with transaction(session_factory) as session:
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert event.action == "push.certificate.upload" and event.detail["topic_replaced"] is True
    assert event.detail["previous_topic"] == old and event.actor == "tester"


def test_a_renewal_by_another_apple_id_warns(session_factory: SessionFactory, box: SecretBox) -> None:
    topic = new_topic()
    activate(session_factory, box, topic=topic)
    made = make_request(session_factory, box, unsigned=True)
    result = upload(session_factory, box, pem(issue_push_certificate(made.content, topic=topic)), apple_id="b@ex.com")
    assert any(f"created with Apple ID {APPLE_ID}" in warning for warning in result.warnings)
    assert result.certificate.apple_id == "b@ex.com"


def test_uploading_the_active_certificate_again_changes_nothing(
    session_factory: SessionFactory, box: SecretBox
) -> None:
    certificate = activate(session_factory, box)
    before = snapshot(session_factory)
    result = upload(session_factory, box, pem(certificate))
    assert result.warnings == ["This certificate is already the active one; nothing was changed."]
    assert snapshot(session_factory) == before


def _dep_token_smime(tmp_path: Path) -> bytes:
    return openssl_encrypt(inner_token_text({"x": "y"}), pem(authority()[1]).decode(), tmp_path)


def _bad_files(csr: str, tmp_path: Path) -> dict[str, tuple[bytes, type[PippinError], str]]:
    good = pem(issue_push_certificate(csr))
    now = datetime.now(UTC)
    expired = issue_push_certificate(csr, not_before=now - timedelta(days=400))
    future = issue_push_certificate(csr, not_before=now + timedelta(days=3))
    vendor = issue_vendor_certificate(generate_private_key())
    key_only = generate_private_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    smime = _dep_token_smime(tmp_path / "smime")
    der_token = openssl_encrypt(inner_token_text({"x": "y"}), good.decode(), tmp_path / "der", outform="DER")
    return {
        "a DEP token (S/MIME)": (smime, InvalidInput, "a DEP server token"),
        "a DEP token (DER)": (der_token, InvalidInput, "a DEP server token"),
        "a CSR": (csr.encode(), InvalidInput, "a certificate signing request (CSR)"),
        "a key alone": (key_only, InvalidInput, "a private key, with no certificate"),
        "random bytes": (os.urandom(2000), InvalidInput, "neither a PEM nor a DER certificate"),
        "random DER-looking bytes": (b"\x30\x82" + os.urandom(900), InvalidInput, "neither a PEM nor a DER"),
        "truncated PEM": (good[: len(good) // 2], InvalidInput, "cut short"),
        "damaged PEM": (good.replace(b"M", b"!", 3), InvalidInput, "damaged"),
        "oversized": (good + b"\n" * 100_001, InvalidInput, "larger than 100,000 bytes"),
        "empty": (b"", InvalidInput, "empty"),
        "expired": (pem(expired), InvalidInput, "expired on"),
        "not yet valid": (pem(future), InvalidInput, "valid only from"),
        "not a push certificate": (pem(vendor), InvalidInput, "not an MDM push certificate"),
        "another request's": (pem(issue_push_certificate(_foreign_csr())), InvalidInput, "made for another request"),
        "two push certificates": (good + good, InvalidInput, "2 push certificates"),
    }


def test_every_wrong_file_is_refused_saying_what_it_is_and_changes_nothing(
    session_factory: SessionFactory, box: SecretBox, tmp_path: Path
) -> None:
    make_request(session_factory, box)
    csr = pending_csr(session_factory)
    for name, (data, error, words) in _bad_files(csr, tmp_path).items():
        before = snapshot(session_factory)
        with pytest.raises(error) as refused:
            upload(session_factory, box, data)
        assert words in str(refused.value), name
        assert refused.value.hint, name
        assert snapshot(session_factory) == before, name
    # And the right one still goes in afterwards.
    assert upload(session_factory, box, pem(issue_push_certificate(csr))).certificate.status == "active"


def test_a_der_certificate_is_accepted(session_factory: SessionFactory, box: SecretBox) -> None:
    make_request(session_factory, box)
    certificate = issue_push_certificate(pending_csr(session_factory))
    result = upload(session_factory, box, certificate.public_bytes(serialization.Encoding.DER))
    assert result.certificate.status == PushCertificateStatus.active


@pytest.mark.parametrize("apple_id", ["", "not-an-address", "a@b", "ann@example.com\u2028", "x\x00@example.com"])
def test_a_bad_apple_id_is_refused_before_anything(
    session_factory: SessionFactory, box: SecretBox, apple_id: str
) -> None:
    make_request(session_factory, box)
    certificate = issue_push_certificate(pending_csr(session_factory))
    before = snapshot(session_factory)
    with pytest.raises(InvalidInput, match="Apple ID"):
        upload(session_factory, box, pem(certificate), apple_id=apple_id)
    assert snapshot(session_factory) == before


def test_status_warns_at_30_and_7_days_and_expires(session_factory: SessionFactory, box: SecretBox) -> None:
    certificate = activate(session_factory, box)
    end = certificate.not_valid_after_utc
    expected = {
        end - timedelta(days=60): PushCertificateStatus.active,
        end - timedelta(days=20): PushCertificateStatus.expiring,
        end - timedelta(days=3): PushCertificateStatus.expiring_soon,
        end + timedelta(seconds=1): PushCertificateStatus.expired,
    }
    for now, status in expected.items():
        found = _status(session_factory, now)
        assert found.status == status, now
    assert _status(session_factory, end - timedelta(days=3, hours=1)).days_left == 3
    assert APPLE_ID in _status(session_factory, end - timedelta(days=3)).next_step


def test_a_refusal_by_apns_shows_until_a_new_upload(session_factory: SessionFactory, box: SecretBox) -> None:
    topic = new_topic()
    certificate = activate(session_factory, box, topic=topic)
    at = datetime.now(UTC)
    with transaction(session_factory) as session:
        assert not certificate_service.record_certificate_refused(session, fingerprint="ab" * 32, reason="x", at=at)
        assert certificate_service.record_certificate_refused(
            session, fingerprint=fingerprint(certificate), reason="BadCertificate", at=at
        )
    found = _status(session_factory)
    assert found.status == PushCertificateStatus.refused_by_apns and found.refused_reason == "BadCertificate"
    made = make_request(session_factory, box, unsigned=True)
    cleared = upload(session_factory, box, pem(issue_push_certificate(made.content, topic=topic))).certificate
    assert cleared.status == PushCertificateStatus.active and cleared.refused_reason is None


def test_keys_are_stored_only_sealed_and_never_logged(
    session_factory: SessionFactory, box: SecretBox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    activate(session_factory, box)
    make_request(session_factory, box, unsigned=True)
    with transaction(session_factory) as session:
        identity = certificate_service.load_push_identity(session, box=box)
        row = session.execute(
            text("SELECT private_key_encrypted, pending_private_key_encrypted FROM push_certificates")
        ).one()
        texts = session.execute(
            text("SELECT pending_csr_pem, certificate_pem, topic, apple_id FROM push_certificates")
        ).one()
        details = [str(event.detail) for event in session.scalars(select(AuditEvent))]
    assert identity is not None
    key = serialization.load_pem_private_key(identity.private_key_pem, password=None)
    clear_der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for sealed in row:
        sealed = bytes(sealed)
        assert box.sealed_by_this_key(sealed) and clear_der not in sealed
    assert box.decrypt(bytes(row[0])) == clear_der
    for value in [*texts, *details]:
        assert "PRIVATE KEY" not in str(value)
    assert "push certificate uploaded" in caplog.text and "PRIVATE KEY" not in caplog.text
    assert identity.private_key_pem.decode().splitlines()[2] not in caplog.text
