"""The topic of a push certificate, and its validity on the simulator's clock (TLS already checked the chain)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pippin.sim.apns_identity import identify
from tests.sim.push_certs import PushCA, new_topic

NOW = datetime.now(UTC)


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def test_the_subject_uid_is_the_topic() -> None:
    ca = PushCA.create()
    topic = new_topic()
    identity = identify(der(ca.issue(topic).certificate), trusted_push_cas=[ca.certificate], now=NOW)
    assert (identity.topic, identity.refusal, identity.expired) == (topic, None, False)


def test_no_certificate_means_missing_provider_token_and_a_foreign_uid_bad_certificate() -> None:
    ca = PushCA.create()
    assert identify(None, trusted_push_cas=[ca.certificate], now=NOW).refusal == "MissingProviderToken"
    for uid in ("", "com.example.app", "com.apple.mgm"):
        identity = identify(der(ca.issue(uid=uid).certificate), trusted_push_cas=[ca.certificate], now=NOW)
        assert identity.topic is None and identity.refusal == "BadCertificate", uid
    assert identify(b"\x30\x03\x02\x01\x00", trusted_push_cas=[], now=NOW).refusal == "BadCertificate"


def test_validity_is_judged_on_the_clock_it_is_given() -> None:
    ca = PushCA.create(valid_days=30)
    certificate = der(ca.issue(not_after=NOW + timedelta(days=365)).certificate)
    assert not identify(certificate, trusted_push_cas=[ca.certificate], now=NOW).expired
    assert identify(certificate, trusted_push_cas=[ca.certificate], now=NOW + timedelta(days=366)).expired
    # The issuing CA expires first: the certificate goes with it.
    assert identify(certificate, trusted_push_cas=[ca.certificate], now=NOW + timedelta(days=31)).expired
    assert identify(certificate, trusted_push_cas=[ca.certificate], now=NOW - timedelta(days=2)).expired
