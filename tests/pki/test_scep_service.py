"""PKCSReq and RenewalReq end to end, with a client of the tests' own: what a device sends and what it reads back."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.crypto.secrets import SecretBox
from pippin.pki.authority import Authority
from pippin.pki.issued import find_issued_certificate, fingerprint_of
from pippin.pki.scep import ca_capabilities
from pippin.store.models import EnrollmentChallenge, IssuedCertificate
from tests.crypto.openssl_tokens import OPENSSL
from tests.pki.conftest import KEYS, T0, answer, challenge_for
from tests.pki.scep_client import SCEPClient, build_csr


def _issued_count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(IssuedCertificate)).scalar_one()


@pytest.mark.parametrize(
    ("cipher", "digest"), [("aes", "sha256"), ("3des", "sha1"), ("aes", "sha1"), ("3des", "sha256")]
)
def test_a_device_enrolls_with_its_challenge_and_reads_its_certificate(
    session: Session, box: SecretBox, authority: Authority, tmp_path: Path, cipher: str, digest: str
) -> None:
    client = SCEPClient(key=KEYS(), ca=authority.certificate, workdir=tmp_path, cipher=cipher, digest=digest)
    challenge = challenge_for(session)

    result = answer(session, box, client.enroll_request(challenge))
    reply = client.read(result.message)

    assert (reply.message_type, reply.status, reply.fail_info) == ("3", "0", None)
    assert reply.transaction_id == client.transaction_id
    assert reply.recipient_nonce == client.sender_nonce
    assert len(reply.sender_nonce) == 16 and reply.sender_nonce != client.sender_nonce
    assert reply.digest == digest  # answered with the digest the client signed with
    certificate = reply.certificate
    assert certificate is not None
    certificate.verify_directly_issued_by(authority.certificate)
    assert certificate.public_key() == client.key.public_key()
    assert certificate.subject.rfc4514_string() == "CN=Pippin Identity,O=Acme"
    assert certificate.not_valid_before_utc == T0 - timedelta(minutes=10)
    assert certificate.not_valid_after_utc == T0 + timedelta(days=365)
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_encipherment and not usage.key_cert_sign
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    row = find_issued_certificate(session, fingerprint_of(certificate.public_bytes(Encoding.DER)))
    assert row is not None and row.fingerprint == result.issued_fingerprint
    assert row.serial == format(certificate.serial_number, "x")
    assert (row.subject, row.udid, row.revoked_at) == ("CN=Pippin Identity,O=Acme", None, None)
    assert (row.not_before, row.not_after) == (certificate.not_valid_before_utc, certificate.not_valid_after_utc)
    challenge_row = session.get(EnrollmentChallenge, row.challenge_id)
    assert challenge_row is not None and challenge_row.serial_number == "C02TESTSERIAL"
    assert challenge_row.uses_left == 0


def test_key_encipherment_is_granted_when_the_csr_asks(session: Session, box: SecretBox, client: SCEPClient) -> None:
    reply = client.read(answer(session, box, client.enroll_request(challenge_for(session), encipherment=True)).message)
    assert reply.certificate is not None
    assert reply.certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment


def test_a_challenge_cannot_be_used_twice(session: Session, box: SecretBox, client: SCEPClient, tmp_path: Path) -> None:
    challenge = challenge_for(session)
    assert client.read(answer(session, box, client.enroll_request(challenge)).message).status == "0"

    second = SCEPClient(key=KEYS(), ca=client.ca, workdir=tmp_path / "second")
    reply = second.read(answer(session, box, second.enroll_request(challenge)).message)

    assert (reply.status, reply.fail_info, reply.certificate) == ("2", "2", None)  # FAILURE, badRequest
    assert reply.transaction_id == second.transaction_id and reply.recipient_nonce == second.sender_nonce
    assert _issued_count(session) == 1


def test_a_challenge_for_several_uses_allows_that_many(
    session: Session, box: SecretBox, authority: Authority, tmp_path: Path
) -> None:
    challenge = challenge_for(session, uses=2)
    statuses = []
    for index in range(3):
        client = SCEPClient(key=KEYS(), ca=authority.certificate, workdir=tmp_path / str(index))
        statuses.append(client.read(answer(session, box, client.enroll_request(challenge)).message).status)
    assert statuses == ["0", "0", "2"]
    assert _issued_count(session) == 2


@pytest.mark.parametrize("challenge", ["expired", "unknown", None])
def test_an_expired_unknown_or_missing_challenge_is_refused_and_nothing_is_stored(
    session: Session, box: SecretBox, client: SCEPClient, challenge: str | None
) -> None:
    issued = challenge_for(session, ttl_minutes=5)
    presented = {"expired": issued, "unknown": "not-a-challenge-pippin-issued", None: None}[challenge]

    result = answer(session, box, client.enroll_request(presented), now=T0 + timedelta(minutes=5))
    reply = client.read(result.message)

    assert (reply.status, reply.fail_info) == ("2", "2")
    assert _issued_count(session) == 0
    row = session.execute(select(EnrollmentChallenge)).scalar_one()
    assert row.uses_left == 1


def test_a_renewal_signed_by_an_issued_certificate_gets_a_new_one_for_the_same_binding(
    session: Session, box: SecretBox, client: SCEPClient, tmp_path: Path
) -> None:
    first = client.read(answer(session, box, client.enroll_request(challenge_for(session))).message).certificate
    assert first is not None
    old = find_issued_certificate(session, fingerprint_of(first.public_bytes(Encoding.DER)))
    assert old is not None
    old.udid = "UDID-OF-THE-DEVICE"

    renewing = SCEPClient(key=KEYS(), ca=client.ca, workdir=tmp_path / "renew")
    renewing.signer_key, renewing.signer_certificate = client.key, first
    result = answer(session, box, renewing.renewal_request(), now=T0 + timedelta(days=200))
    reply = renewing.read(result.message)

    assert (reply.status, reply.fail_info) == ("0", None)
    assert reply.certificate is not None and reply.certificate.public_key() == renewing.key.public_key()
    new = find_issued_certificate(session, fingerprint_of(reply.certificate.public_bytes(Encoding.DER)))
    assert new is not None
    assert (new.challenge_id, new.renewed_from_id, new.udid) == (old.challenge_id, old.id, "UDID-OF-THE-DEVICE")
    assert new.not_after == T0 + timedelta(days=565)


@pytest.mark.parametrize(("case", "fail_info"), [("revoked", "2"), ("expired", "3"), ("foreign", "2")])
def test_a_renewal_signed_by_a_revoked_expired_or_foreign_certificate_is_refused(
    session: Session, box: SecretBox, client: SCEPClient, tmp_path: Path, case: str, fail_info: str
) -> None:
    first = client.read(answer(session, box, client.enroll_request(challenge_for(session))).message).certificate
    assert first is not None
    now = T0 + timedelta(days=1)
    renewing = SCEPClient(key=KEYS(), ca=client.ca, workdir=tmp_path / "renew")
    if case != "foreign":  # "foreign": the client's own self-signed certificate, which Pippin never issued
        renewing.signer_key, renewing.signer_certificate = client.key, first
    if case == "revoked":
        row = find_issued_certificate(session, fingerprint_of(first.public_bytes(Encoding.DER)))
        assert row is not None
        row.revoked_at = T0
    if case == "expired":
        now = T0 + timedelta(days=366)

    reply = renewing.read(answer(session, box, renewing.renewal_request(), now=now).message)

    assert (reply.status, reply.fail_info) == ("2", fail_info)
    assert _issued_count(session) == 1


@pytest.mark.parametrize("message_type", [20, 21, 22, 3, 99])
def test_other_message_types_are_answered_with_bad_request(
    session: Session, box: SecretBox, client: SCEPClient, message_type: int
) -> None:
    message = client.request(build_csr(client.key, challenge=challenge_for(session)), message_type=message_type)
    reply = client.read(answer(session, box, message).message)
    assert (reply.status, reply.fail_info) == ("2", "2")


def test_a_pkcs_req_without_a_challenge_is_not_taken_for_a_renewal(
    session: Session, box: SecretBox, client: SCEPClient
) -> None:
    reply = client.read(answer(session, box, client.enroll_request(None)).message)
    assert (reply.status, reply.fail_info) == ("2", "2")


def test_a_tampered_signature_is_answered_with_bad_message_check(
    session: Session, box: SecretBox, client: SCEPClient
) -> None:
    message = bytearray(client.enroll_request(challenge_for(session)))
    message[-5] ^= 0x01  # inside the signature, the last field of the message
    reply = client.read(answer(session, box, bytes(message)).message)
    assert (reply.status, reply.fail_info) == ("2", "1")
    assert _issued_count(session) == 0


def test_ca_capabilities_name_rfc_8894_keywords() -> None:
    assert ca_capabilities().splitlines() == ["POSTPKIOperation", "SHA-256", "AES", "SCEPStandard", "Renewal"]


def test_openssl_verifies_the_cert_rep_signature_and_reads_its_attributes(
    session: Session, box: SecretBox, client: SCEPClient, authority: Authority, tmp_path: Path
) -> None:
    reply = answer(session, box, client.enroll_request(challenge_for(session))).message
    (tmp_path / "reply.der").write_bytes(reply)
    (tmp_path / "ca.pem").write_bytes(authority.certificate.public_bytes(Encoding.PEM))

    verified = subprocess.run(
        [
            OPENSSL,
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "reply.der"),
            "-CAfile",
            str(tmp_path / "ca.pem"),
            "-purpose",
            "any",
            "-attime",
            str(int(T0.timestamp())),
        ],
        capture_output=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr.decode()
    assert verified.stdout.startswith(b"\x30")  # the EnvelopedData to the client
    printed = subprocess.run(
        [OPENSSL, "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(tmp_path / "reply.der")],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for oid in ("2.16.840.1.113733.1.9.2", "2.16.840.1.113733.1.9.3", "2.16.840.1.113733.1.9.7"):
        assert oid in printed
