"""The MachineInfo a simulated device posts: the plist iOS writes, signed as real devices sign it."""

from __future__ import annotations

import base64
import plistlib

from asn1crypto import cms

from pippin.sim.iphone.machine_info import device_info_header, machine_info_plist, signed_machine_info
from tests.sim.iphone.pki import facts, issue, issue_ec, new_ca, verify_cms


def test_machine_info_is_ber_with_indefinite_lengths_and_sha1_and_verifies() -> None:
    device_ca = new_ca("Device CA")
    identity = issue(device_ca, "device")
    signed = signed_machine_info(facts(), identity)
    assert signed[:2] == b"\x30\x80"  # ContentInfo, indefinite length
    assert b"\x24\x80" in signed  # the content as a constructed OCTET STRING, indefinite length
    assert signed.endswith(b"\x00\x00")
    parsed = cms.ContentInfo.load(signed)["content"]
    assert [a["algorithm"].native for a in parsed["digest_algorithms"]] == ["sha1"]
    verified = verify_cms(signed)
    assert verified.digest == "sha1" and verified.signer == identity.certificate
    assert verified.content == machine_info_plist(facts())


def test_a_factory_identity_with_an_ec_key_signs_with_ecdsa_over_sha1() -> None:
    identity = issue_ec(new_ca("Device CA"), "device")
    verified = verify_cms(signed_machine_info(facts(), identity))
    assert verified.digest == "sha1" and verified.signer == identity.certificate


def test_a_changed_byte_in_the_content_fails_verification() -> None:
    identity = issue(new_ca(), "device")
    signed = bytearray(signed_machine_info(facts(), identity))
    at = bytes(signed).index(b"iPhone15,2")
    signed[at] ^= 1
    try:
        verify_cms(bytes(signed))
    except AssertionError:
        return
    raise AssertionError("a tampered MachineInfo verified")


def test_the_plist_carries_what_ios_17_and_later_send() -> None:
    info = plistlib.loads(machine_info_plist(facts(os_version="18.1")))
    assert info == {
        "UDID": "00008120-000A1C2E3E9B401E",
        "SERIAL": "F2LXK0AAHG7F",
        "PRODUCT": "iPhone15,2",
        "VERSION": "22B83",
        "OS_VERSION": "18.1",
        "LANGUAGE": "en-US",
        "IMEI": "35 289611 025183 6",
        "MEID": "35289611025183",
        "MDM_CAN_REQUEST_SOFTWARE_UPDATE": True,
        "SOFTWARE_UPDATE_DEVICE_ID": "iPhone15,2",
    }


def test_a_wifi_model_on_ios_16_sends_no_imei_and_cannot_request_an_update() -> None:
    info = plistlib.loads(machine_info_plist(facts(os_version="16.7", cellular=False)))
    assert "IMEI" not in info and "MEID" not in info
    assert "MDM_CAN_REQUEST_SOFTWARE_UPDATE" not in info and "SOFTWARE_UPDATE_DEVICE_ID" not in info


def test_the_web_view_header_is_the_same_signed_bytes_in_base64() -> None:
    signed = signed_machine_info(facts(), issue(new_ca(), "device"))
    assert base64.b64decode(device_info_header(signed)) == signed
