"""A device's factory identity and facts, and the state it keeps across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from pippin.sim.iphone.device_state import DeviceState, StateDirectory
from pippin.sim.iphone.errors import SetupFailed
from pippin.sim.iphone.identity import DeviceFacts, DeviceIdentity
from tests.sim.iphone.pki import facts, issue, issue_ec, new_ca, new_key


def test_the_identity_pem_is_the_key_then_the_certificate_then_the_chain() -> None:
    ca = new_ca()
    identity = issue(ca, "device")
    loaded = DeviceIdentity.from_pem(identity.to_pem())
    assert loaded.certificate == identity.certificate and loaded.chain == (ca.certificate,)
    assert loaded.key.private_numbers() == identity.key.private_numbers()


def test_an_ec_identity_is_taken_too() -> None:
    identity = issue_ec(new_ca(), "device")
    assert DeviceIdentity.from_pem(identity.to_pem()).certificate == identity.certificate


def test_an_identity_pem_without_a_key_or_with_another_keys_certificate_is_refused() -> None:
    identity = issue(new_ca(), "device")
    certificate = identity.certificate.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(SetupFailed, match="no PRIVATE KEY"):
        DeviceIdentity.from_pem(certificate)
    other = new_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SetupFailed, match="not the key's"):
        DeviceIdentity.from_pem(other + certificate)


@pytest.mark.parametrize(
    "broken", [{"udid": None}, {"product": ""}, {"os_version": 17}, {"imei": 5}, {"serial_number": "x" * 201}]
)
def test_facts_missing_or_of_the_wrong_type_are_refused(broken: dict[str, object]) -> None:
    with pytest.raises(SetupFailed):
        DeviceFacts.from_dict({**facts().as_dict(), **broken})


def test_the_saved_state_comes_back_as_it_was(tmp_path: Path) -> None:
    states = StateDirectory(tmp_path)
    identity = issue(new_ca(), "device")
    saved = DeviceState(
        serial_number="F2LXK0AAHG7F",
        facts=facts(),
        factory_identity=identity,
        push_token="ab" * 32,
        push_magic="MAGIC",
        unlock_token=b"\x00\x01",
        enrolled=True,
    )
    states.save(saved)
    assert (tmp_path / "F2LXK0AAHG7F.json").stat().st_mode & 0o077 == 0  # the device's keychain: owner only
    loaded = states.load("F2LXK0AAHG7F")
    assert loaded.facts == saved.facts and loaded.unlock_token == b"\x00\x01" and loaded.enrolled
    assert loaded.factory_identity is not None and loaded.factory_identity.certificate == identity.certificate


def test_an_unreadable_state_or_a_serial_that_cannot_name_a_file_is_a_clear_failure(tmp_path: Path) -> None:
    (tmp_path / "BROKEN1.json").write_text("{not json")
    with pytest.raises(SetupFailed, match="unreadable"):
        StateDirectory(tmp_path).load("BROKEN1")
    with pytest.raises(SetupFailed, match="cannot name"):
        StateDirectory(tmp_path).load("../etc/passwd")
