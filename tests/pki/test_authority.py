"""The SCEP CA and the profile-signing identity: made once, sealed at rest, reused, and what their certificates say."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from pippin.crypto.keys import private_key_to_pkcs8_der
from pippin.crypto.secrets import SecretBox
from pippin.pki import opened_keys
from pippin.pki.authority import Authority, authority_certificate_der, ensure_authority, load_authority
from pippin.pki.profile_signing import sign_profile
from pippin.pki.server_identity import ensure_server_identity
from pippin.store.models import PKIAuthority
from tests.crypto.openssl_tokens import OPENSSL
from tests.pki.conftest import KEYS, T0


def test_no_authority_until_one_is_made(session: Session, box: SecretBox) -> None:
    assert load_authority(session, box=box) is None


def test_the_ca_is_made_once_and_its_key_is_sealed(session: Session, box: SecretBox, authority: Authority) -> None:
    again = ensure_authority(session, box=box, generate_key=KEYS, now=T0 + timedelta(days=1))
    assert again.certificate_der == authority.certificate_der
    assert again.private_key.private_numbers() == authority.private_key.private_numbers()

    row = session.execute(select(PKIAuthority)).scalar_one()
    clear = private_key_to_pkcs8_der(authority.private_key)
    assert clear not in row.private_key_encrypted
    assert box.sealed_by_this_key(row.private_key_encrypted)
    assert row.fingerprint == authority.fingerprint and len(row.fingerprint) == 64


def test_the_ca_certificate_signs_certificates_and_takes_encrypted_requests(authority: Authority) -> None:
    certificate = authority.certificate
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert constraints.ca and constraints.path_length == 0
    assert usage.key_cert_sign and usage.key_encipherment and usage.digital_signature
    assert certificate.not_valid_after_utc == T0 + timedelta(days=3650)
    certificate.verify_directly_issued_by(certificate)


def test_a_loaded_ca_is_opened_once_and_reopened_when_the_row_changes(
    session: Session, box: SecretBox, authority: Authority
) -> None:
    first = load_authority(session, box=box)
    second = load_authority(session, box=box)
    assert first is not None and second is not None
    assert first.private_key is second.private_key  # from the cache

    # Another process re-sealed the key (a master key rotation): the new bytes are opened, not the cached ones.
    row = session.execute(select(PKIAuthority)).scalar_one()
    row.private_key_encrypted = box.encrypt(private_key_to_pkcs8_der(authority.private_key))
    session.flush()
    third = load_authority(session, box=box)
    assert third is not None and third.private_key is not first.private_key
    assert len(opened_keys._opened) <= opened_keys._CAPACITY


def test_the_server_identity_is_issued_by_the_ca_and_kept(
    session: Session, box: SecretBox, authority: Authority
) -> None:
    identity = ensure_server_identity(session, box=box, generate_key=KEYS, now=T0)
    identity.certificate.verify_directly_issued_by(authority.certificate)
    assert identity.chain == [authority.certificate]
    assert not identity.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    again = ensure_server_identity(session, box=box, generate_key=KEYS, now=T0 + timedelta(days=100))
    assert again.certificate == identity.certificate
    row = session.execute(select(PKIAuthority)).scalar_one()
    assert row.server_identity_key_encrypted is not None
    assert private_key_to_pkcs8_der(identity.private_key) not in row.server_identity_key_encrypted


def test_the_server_identity_is_replaced_before_it_ends(session: Session, box: SecretBox, authority: Authority) -> None:
    identity = ensure_server_identity(session, box=box, generate_key=KEYS, now=T0)
    later = ensure_server_identity(session, box=box, generate_key=KEYS, now=T0 + timedelta(days=701))
    assert later.certificate != identity.certificate
    assert later.certificate.not_valid_after_utc > identity.certificate.not_valid_after_utc


def test_a_signed_profile_verifies_with_openssl_against_the_ca(
    session: Session, box: SecretBox, authority: Authority, tmp_path: Path
) -> None:
    identity = ensure_server_identity(session, box=box, generate_key=KEYS, now=T0)
    payload = (
        b'<?xml version="1.0"?><plist version="1.0"><dict>'
        b"<key>PayloadType</key><string>Configuration</string></dict></plist>"
    )

    signed = sign_profile(identity, payload)

    (tmp_path / "profile.der").write_bytes(signed)
    (tmp_path / "ca.pem").write_bytes(authority.certificate.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        [
            OPENSSL,
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "profile.der"),
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
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == payload  # attached, unchanged
    printed = subprocess.run(
        [OPENSSL, "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(tmp_path / "profile.der")],
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert "sha256" in printed
    assert printed.count("cert_info:") == 2  # the signer and the CA above it


def _statements_of(session: Session) -> list[str]:
    """The SQL ``session``'s connection runs from now on (appended as they run)."""
    run: list[str] = []
    event.listen(session.connection(), "before_cursor_execute", lambda *args: run.append(args[2]))
    return run


def test_the_server_identity_and_its_ca_come_from_one_read_of_their_row(
    session: Session, box: SecretBox, authority: Authority
) -> None:
    ensure_server_identity(session, box=box, generate_key=KEYS, now=T0)
    session.expunge_all()
    run = _statements_of(session)
    identity = ensure_server_identity(session, box=box, generate_key=KEYS, now=T0 + timedelta(days=1))
    assert len(run) == 1 and "pki_authorities" in run[0]
    assert identity.ca_certificate.public_bytes(serialization.Encoding.DER) == authority.certificate_der


def test_get_ca_cert_reads_the_certificate_alone(session: Session, authority: Authority) -> None:
    run = _statements_of(session)
    assert authority_certificate_der(session) == authority.certificate_der
    assert len(run) == 1 and "private_key_encrypted" not in run[0]


def test_no_ca_certificate_before_the_ca_is_made(session: Session) -> None:
    assert authority_certificate_der(session) is None
