"""Device authentication: only a certificate Pippin's CA issued, valid, recorded, unrevoked and bound to the
device the message names proves a request; every other proof is refused and logged."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from pippin.mdm.device_auth import (
    CertificateCache,
    DeviceAuthenticationRefused,
    authenticate_device,
    check_device_binding,
    read_forwarded_certificate,
)
from tests.mdm.device_identities import NOW, IssuedIdentities, make_authority

BODY = b"<plist>body</plist>"
AUTHORITY = make_authority()
FOREIGN = make_authority("Someone Else's CA")


@pytest.fixture
def store() -> IssuedIdentities:
    return IssuedIdentities(authority=AUTHORITY)


def _authenticate(
    store: IssuedIdentities,
    *,
    signature: str | None = None,
    forwarded: str | None = None,
    cache: CertificateCache | None = None,
    now=NOW,
    body: bytes = BODY,
):  # type: ignore[no-untyped-def]
    return authenticate_device(
        None,  # type: ignore[arg-type]  # the in-memory store needs no session
        body=body,
        signature=signature,
        forwarded_certificate=forwarded,
        identities=store,
        cache=cache if cache is not None else CertificateCache(),
        now=now,
    )


def test_an_issued_identity_proves_its_signed_body(store: IssuedIdentities) -> None:
    device = store.issue()
    proven = _authenticate(store, signature=device.sign(BODY))
    assert proven.fingerprint == device.fingerprint
    assert proven.method == "signature"


def test_the_certificate_is_parsed_once_per_device(store: IssuedIdentities) -> None:
    device, cache = store.issue(), CertificateCache(size=2)
    for _ in range(3):
        _authenticate(store, signature=device.sign(BODY), cache=cache)
    assert len(cache) == 1
    for _ in range(3):
        _authenticate(store, signature=store.issue().sign(BODY), cache=cache)
    assert len(cache) == 2  # bounded: the least recently used went


@pytest.mark.parametrize("case", ["no-proof", "other-body", "foreign-ca", "unrecorded", "revoked", "expired", "early"])
def test_bad_proofs_are_refused_and_logged(
    store: IssuedIdentities, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    device = store.issue()
    signature, now = device.sign(BODY), NOW
    if case == "no-proof":
        signature = None  # type: ignore[assignment]
    elif case == "other-body":
        signature = device.sign(BODY + b"!")
    elif case == "foreign-ca":
        signature = store.record(FOREIGN.issue("device")).sign(BODY)
    elif case == "unrecorded":
        signature = AUTHORITY.issue("never recorded").sign(BODY)
    elif case == "revoked":
        store.revoke(device)
    elif case == "expired":
        now = NOW + timedelta(days=400)
    elif case == "early":
        now = NOW - timedelta(days=2)
    with caplog.at_level(logging.WARNING, logger="pippin.mdm.device_auth"), pytest.raises(DeviceAuthenticationRefused):
        _authenticate(store, signature=signature, now=now)
    assert "device authentication refused" in caplog.text
    assert "body" not in caplog.text


def test_a_signature_whose_certificate_was_swapped_is_refused(store: IssuedIdentities) -> None:
    """A forger with device A's certificate (public) but not its key signs with its own key."""
    victim, forger = store.issue(), AUTHORITY.issue("forger")
    forged = forger.sign(BODY)
    # Put the victim's certificate where the forger's was: the signer then names the victim's issuer and serial.
    import base64

    der = base64.b64decode(forged).replace(forger.der, victim.der)
    der = der.replace(
        forger.certificate.serial_number.to_bytes(2, "big"), victim.certificate.serial_number.to_bytes(2, "big")
    )
    with pytest.raises(DeviceAuthenticationRefused):
        _authenticate(store, signature=base64.b64encode(der).decode())


def test_a_forwarded_certificate_proves_the_device(store: IssuedIdentities) -> None:
    import base64

    device = store.issue()
    by_pem = _authenticate(store, forwarded=device.forwarded_pem())
    by_rfc9440 = _authenticate(store, forwarded=":" + base64.b64encode(device.der).decode() + ":")
    assert by_pem.fingerprint == by_rfc9440.fingerprint == device.fingerprint
    assert by_pem.method == "proxy"


@pytest.mark.parametrize("value", [":not base64:", "garbage", "%ZZ", ":" + "A" * 20000 + ":"])
def test_unreadable_forwarded_certificates_are_refused(value: str) -> None:
    with pytest.raises(DeviceAuthenticationRefused):
        read_forwarded_certificate(value)


def test_the_first_authenticate_binds_and_another_udid_is_then_refused(
    store: IssuedIdentities, session: Session
) -> None:
    device = store.issue(serial_number="F5JM992LF193")
    proven = _authenticate(store, signature=device.sign(BODY))
    binding = check_device_binding(
        session, proven, udid="UDID-A", serial_number="F5JM992LF193", identities=store, may_bind=True
    )
    assert binding is not None and binding.serial_number == "F5JM992LF193"
    session.commit()
    proven = _authenticate(store, signature=device.sign(BODY))
    assert proven.identity.udid == "UDID-A"
    check_device_binding(session, proven, udid="UDID-A", serial_number=None, identities=store, may_bind=False)
    for may_bind in (True, False):
        with pytest.raises(DeviceAuthenticationRefused, match="another device"):
            check_device_binding(
                session, proven, udid="UDID-B", serial_number=None, identities=store, may_bind=may_bind
            )


def test_an_unbound_identity_speaks_only_through_authenticate(store: IssuedIdentities, session: Session) -> None:
    proven = _authenticate(store, signature=store.issue().sign(BODY))
    with pytest.raises(DeviceAuthenticationRefused, match="Authenticate first"):
        check_device_binding(session, proven, udid="UDID-A", serial_number=None, identities=store, may_bind=False)


@pytest.mark.parametrize("binding", [{"udid": "UDID-X"}, {"serial_number": "OTHERSERIAL"}])
def test_an_identity_issued_for_another_device_is_refused(
    store: IssuedIdentities, session: Session, binding: dict[str, str]
) -> None:
    proven = _authenticate(store, signature=store.issue(**binding).sign(BODY))
    with pytest.raises(DeviceAuthenticationRefused, match="issued for another device"):
        check_device_binding(
            session, proven, udid="UDID-A", serial_number="F5JM992LF193", identities=store, may_bind=True
        )
