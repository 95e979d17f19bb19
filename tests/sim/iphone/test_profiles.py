"""Profile install as iOS does it: the signature and its trust, Apple's order, what iOS refuses, locked removal."""

from __future__ import annotations

import pytest

from pippin.sim.iphone.errors import RemovalRefused, SetupFailed
from pippin.sim.iphone.profiles import ProfileStore, read_profile
from tests.sim.iphone.pki import issue, new_ca, sign_profile
from tests.sim.iphone.profiles import TOPIC, enrollment_profile, plist


def test_a_signed_profile_whose_signer_chains_to_a_trusted_ca_installs_in_apples_order() -> None:
    ca = new_ca("Server CA")
    signer = issue(ca, "Profile signing")
    profile = read_profile(sign_profile(plist(enrollment_profile(anchor=ca)), signer), trusted=[ca.certificate])
    assert profile.verified
    assert [p["PayloadType"] for p in profile.payloads] == [
        "com.apple.security.root",
        "com.apple.security.scep",
        "com.apple.mdm",
    ]
    assert profile.anchors() == [ca.certificate]


def test_a_tampered_profile_is_refused() -> None:
    ca = new_ca()
    signed = bytearray(sign_profile(plist(enrollment_profile()), issue(ca, "signer")))
    at = bytes(signed).index(TOPIC.encode())
    signed[at + len("com.apple.mgmt.")] ^= 0x20
    with pytest.raises(SetupFailed, match="signature is refused"):
        read_profile(bytes(signed), trusted=[ca.certificate])


def test_a_profile_signed_by_an_untrusted_certificate_is_refused() -> None:
    signed = sign_profile(plist(enrollment_profile()), issue(new_ca(), "signer"))
    with pytest.raises(SetupFailed, match="does not trust"):
        read_profile(signed, trusted=[new_ca().certificate])


def test_an_unsigned_profile_installs_not_verified() -> None:
    assert not read_profile(plist(enrollment_profile()), trusted=()).verified


@pytest.mark.parametrize(
    ("mdm", "message"),
    [
        ({"IdentityCertificateUUID": "00000000-0000-0000-0000-000000000000"}, "IdentityCertificateUUID"),
        ({"Topic": "com.example.push"}, "Topic"),
        ({"ServerURL": "http://mdm.example.com/mdm/connect"}, "https"),
        ({"CheckInURL": "ftp://mdm.example.com"}, "https"),
        ({"AccessRights": 0}, "AccessRights"),
        ({"AccessRights": 2}, "requires"),
        ({"SignMessage": False}, "SignMessage"),
        ({"PayloadVersion": 2}, "PayloadVersion"),
    ],
)
def test_what_ios_refuses_in_the_mdm_payload_stops_the_install(mdm: dict[str, object], message: str) -> None:
    with pytest.raises(SetupFailed, match=message):
        read_profile(plist(enrollment_profile(mdm=mdm)), trusted=())


def test_http_is_taken_only_to_the_devices_own_machine() -> None:
    profile = read_profile(plist(enrollment_profile(base_url="http://127.0.0.1:8000")), trusted=())
    assert profile.payload_of("com.apple.mdm") is not None


def test_not_a_profile_is_refused() -> None:
    for body in (b"<plist><string>x</string></plist>", b"\x30\x03\x02\x01\x01", b"<html>"):
        with pytest.raises(SetupFailed):
            read_profile(body, trusted=())


def test_the_user_cannot_remove_a_locked_profile_but_can_remove_a_removable_one() -> None:
    store = ProfileStore()
    store.install(read_profile(plist(enrollment_profile(locked=True)), trusted=()))
    with pytest.raises(RemovalRefused):
        store.remove("com.example.mdm.enrollment", by_user=True)
    assert store.mdm_profile() is not None
    store.remove("com.example.mdm.enrollment", by_user=False)  # the device itself may (an erase, a 401)
    assert store.mdm_profile() is None
    store.install(read_profile(plist(enrollment_profile()), trusted=()))
    store.remove("com.example.mdm.enrollment", by_user=True)
    assert store.find("com.example.mdm.enrollment") is None


def test_the_installed_profiles_survive_a_restart() -> None:
    store = ProfileStore()
    store.install(read_profile(plist(enrollment_profile(locked=True)), trusted=()))
    again = ProfileStore.from_state(store.to_state())
    found = again.find("com.example.mdm.enrollment")
    assert found is not None and found.removal_disallowed
