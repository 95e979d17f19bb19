"""The enrollment profile: signed by the server identity, every payload in Apple's schema, bound by a one-time
challenge, and refused without a push certificate."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox, generate_master_key
from pippin.errors import ConfigurationError
from pippin.mdm.enrollment_profile import NoPushCertificate, enrollment_profile, profile_identifier
from pippin.pki.authority import load_authority
from pippin.pki.challenges import EnrollmentBinding, challenge_hash, redeem_challenge
from pippin.store.models import EnrollmentChallenge
from tests.crypto.openssl_tokens import pooled_key_generator
from tests.mdm.enrollment_setup import NOW, TOPIC, activate_push_certificate
from tests.mdm.profiles import check_against_apples_schemas, payloads_by_type, read_profile

BOX = SecretBox(generate_master_key())
KEYS = pooled_key_generator()
BINDING = EnrollmentBinding(
    serial_number="C8QH6T96DPNG", udid="00008110-000A1B2C3D4E5F60", profile_id=7, profile_revision=3
)


def _settings(server_url: str = "https://mdm.example.com") -> Settings:
    return Settings(server_url=server_url)


def _profile(
    session: Session, *, removal_disallowed: bool = True, settings: Settings | None = None, **options: object
) -> bytes:
    return enrollment_profile(
        session, settings=settings or _settings(), box=BOX, generate_key=KEYS, now=NOW, binding=BINDING,
        removal_disallowed=removal_disallowed, **options,  # type: ignore[arg-type]
    )  # fmt: skip


def _authority(session: Session) -> x509.Certificate:
    authority = load_authority(session, box=BOX)
    assert authority is not None
    return authority.certificate


def test_the_profile_is_signed_and_carries_every_key_a_device_needs(session: Session, tmp_path: Path) -> None:
    activate_push_certificate(session)
    signed = _profile(session, organization="Acme Logistics AB")
    profile = read_profile(signed, trusted=_authority(session), workdir=tmp_path)
    check_against_apples_schemas(profile)
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    assert profile["PayloadIdentifier"] == "com.example.mdm.pippin.enrollment"
    assert profile["PayloadRemovalDisallowed"] is True
    payloads = payloads_by_type(profile)
    [mdm], [scep] = payloads["com.apple.mdm"], payloads["com.apple.security.scep"]
    assert mdm["ServerURL"] == "https://mdm.example.com/mdm/connect"
    assert mdm["CheckInURL"] == "https://mdm.example.com/mdm/checkin"
    assert mdm["Topic"] == TOPIC
    assert (mdm["SignMessage"], mdm["AccessRights"], mdm["CheckOutWhenRemoved"]) == (True, 8191, True)
    assert mdm["ServerCapabilities"] == ["com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken"]
    assert mdm["IdentityCertificateUUID"] == scep["PayloadUUID"]
    content = scep["PayloadContent"]
    assert content["URL"] == "https://mdm.example.com/mdm/scep"
    assert (content["Keysize"], content["Key Type"], content["Key Usage"]) == (2048, "RSA", 5)
    assert content["Subject"] == [
        [["O", "Acme Logistics AB"]], [["CN", "Pippin device identity"]], [["2.5.4.5", "C8QH6T96DPNG"]],
    ]  # fmt: skip
    assert content["Name"] and content["Challenge"]
    [root] = payloads["com.apple.security.root"]
    assert x509.load_der_x509_certificate(root["PayloadContent"]) == _authority(session)
    # Installed in the order iOS needs: anchors, then the identity, then the MDM payload.
    assert [p["PayloadType"] for p in profile["PayloadContent"]] == [
        "com.apple.security.root", "com.apple.security.scep", "com.apple.mdm",
    ]  # fmt: skip
    uuids = [profile["PayloadUUID"], *(p["PayloadUUID"] for p in profile["PayloadContent"])]
    assert len(set(uuids)) == len(uuids)


def test_the_challenge_is_one_use_bound_to_the_device_and_expires(session: Session, tmp_path: Path) -> None:
    activate_push_certificate(session)
    profile = read_profile(_profile(session), trusted=_authority(session), workdir=tmp_path)
    challenge = payloads_by_type(profile)["com.apple.security.scep"][0]["PayloadContent"]["Challenge"]
    row = session.execute(select(EnrollmentChallenge)).scalar_one()
    assert row.challenge_hash == challenge_hash(challenge) and challenge not in row.challenge_hash
    assert (row.serial_number, row.udid, row.profile_id, row.profile_revision) == (
        "C8QH6T96DPNG", "00008110-000A1B2C3D4E5F60", 7, 3,
    )  # fmt: skip
    assert row.uses_left == 1 and row.expires_at == NOW + _settings().enrollment_challenge_ttl
    redeem_challenge(session, challenge, now=NOW + timedelta(minutes=5))
    with pytest.raises(Exception, match="already been used"):
        redeem_challenge(session, challenge, now=NOW + timedelta(minutes=6))


def test_each_profile_has_a_fresh_uuid_and_challenge_but_the_same_identifier(session: Session, tmp_path: Path) -> None:
    activate_push_certificate(session)
    first = read_profile(_profile(session), trusted=_authority(session), workdir=tmp_path / "1")
    second = read_profile(_profile(session), trusted=_authority(session), workdir=tmp_path / "2")
    assert first["PayloadIdentifier"] == second["PayloadIdentifier"]
    assert first["PayloadUUID"] != second["PayloadUUID"]
    challenges = [
        payloads_by_type(p)["com.apple.security.scep"][0]["PayloadContent"]["Challenge"] for p in (first, second)
    ]
    assert challenges[0] != challenges[1]


def test_a_removable_profile_leaves_removal_to_the_user(session: Session, tmp_path: Path) -> None:
    activate_push_certificate(session)
    profile = read_profile(_profile(session, removal_disallowed=False), trusted=_authority(session), workdir=tmp_path)
    assert "PayloadRemovalDisallowed" not in profile


def test_tls_anchors_are_installed_beside_the_scep_ca(session: Session, tmp_path: Path) -> None:
    from tests.mdm.device_ca import device_ca

    activate_push_certificate(session)
    anchor = device_ca("TLS").root
    profile = read_profile(
        _profile(session, anchor_certificates=[anchor]), trusted=_authority(session), workdir=tmp_path
    )
    roots = [
        x509.load_der_x509_certificate(p["PayloadContent"])
        for p in payloads_by_type(profile)["com.apple.security.root"]
    ]
    assert roots == [_authority(session), anchor]


@pytest.mark.parametrize("expired", [False, True])
def test_without_a_push_certificate_in_force_nothing_is_issued(session: Session, expired: bool) -> None:
    if expired:
        activate_push_certificate(session, not_after=NOW - timedelta(seconds=1))
    with pytest.raises(NoPushCertificate) as caught:
        _profile(session)
    assert isinstance(caught.value, ConfigurationError) and "pippin push" in str(caught.value)
    assert session.scalar(select(func.count()).select_from(EnrollmentChallenge)) == 0


@pytest.mark.parametrize(
    ("url", "identifier"),
    [
        ("https://mdm.example.com", "com.example.mdm.pippin.enrollment"),
        ("https://MDM.Example.com:8443/base/", "com.example.mdm.pippin.enrollment"),
        ("http://127.0.0.1:8000", "127.0.0.1.pippin.enrollment"),
    ],
)
def test_the_identifier_is_the_servers_host_in_reverse(url: str, identifier: str) -> None:
    assert profile_identifier(_settings(url)) == identifier
