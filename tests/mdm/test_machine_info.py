"""A device's signed MachineInfo: accepted as real devices send it, every forgery and malformed body refused."""

from __future__ import annotations

import base64
import plistlib
import time

import pytest
from cryptography import x509

from pippin.errors import InvalidInput
from pippin.mdm.machine_info import (
    MAX_BER_DEPTH,
    MAX_BODY_BYTES,
    MachineInfoRefused,
    check_ber_shape,
    read_device_info_header,
    verify_machine_info,
)
from tests.mdm.device_ca import device_ca, issue_device_identity, machine_info_plist, sign_machine_info

CA = device_ca()
DEVICE = issue_device_identity(CA, "00008110-000A1B2C3D4E5F60")


def _refused(body: bytes, match: str | None, anchors: list[x509.Certificate] | None = None) -> MachineInfoRefused:
    with pytest.raises(MachineInfoRefused, match=match) as caught:
        verify_machine_info(body, anchors=anchors or CA.chain)
    assert isinstance(caught.value, InvalidInput)
    return caught.value


def test_ber_with_indefinite_lengths_and_sha1_as_devices_send_is_verified() -> None:
    body = sign_machine_info(machine_info_plist(IMEI="35 209900 176148 1"), DEVICE, ca=CA)
    assert body[:2] == b"\x30\x80" and b"\x24\x80" in body  # indefinite lengths, the content in chunks
    info = verify_machine_info(body, anchors=CA.chain)
    assert (info.serial_number, info.udid, info.product) == ("C8QH6T96DPNG", "00008110-000A1B2C3D4E5F60", "iPhone14,5")
    assert (info.version, info.os_version, info.language, info.imei, info.meid) == (
        "21A329", "17.0", "en", "35 209900 176148 1", None,
    )  # fmt: skip
    assert info.can_request_software_update is True
    assert plistlib.loads(info.raw)["SERIAL"] == "C8QH6T96DPNG"


def test_der_with_sha256_is_verified_too() -> None:
    info = verify_machine_info(sign_machine_info(machine_info_plist(), DEVICE, ca=CA, ber=False), anchors=CA.chain)
    assert info.serial_number == "C8QH6T96DPNG"


def test_the_device_cas_long_expired_validity_decides_nothing() -> None:
    assert CA.device_ca.not_valid_after_utc.year == 2014
    verify_machine_info(sign_machine_info(machine_info_plist(), DEVICE, ca=CA), anchors=[CA.device_ca])


def test_the_signer_must_be_issued_by_a_configured_anchor_not_by_a_certificate_the_body_brings() -> None:
    # Apple Root CA also roots developer certificates through intermediates anyone can download: a chain completed
    # from the body's own certificates would take any developer's key.
    body = sign_machine_info(
        machine_info_plist(), DEVICE, certificates=[DEVICE.certificate, CA.device_ca, CA.intermediate]
    )
    _refused(body, "configured device certificate", [CA.root])
    _refused(body, "configured device certificate", [CA.root, CA.intermediate])
    assert verify_machine_info(body, anchors=[CA.device_ca]).udid


def test_an_ios_16_machine_info_without_os_version_is_read() -> None:
    info = verify_machine_info(
        sign_machine_info(machine_info_plist(os_version=None, can_update=None), DEVICE, ca=CA), anchors=CA.chain
    )
    assert info.os_version is None and info.can_request_software_update is False


def test_a_device_of_a_foreign_ca_is_refused() -> None:
    foreign = device_ca("Foreign")
    stranger = issue_device_identity(foreign, "STRANGER", key_name="stranger")
    _refused(sign_machine_info(machine_info_plist(), stranger, ca=foreign), "configured device certificate")


def test_a_forgers_copy_of_the_device_ca_with_the_same_names_is_refused() -> None:
    forged_ca = device_ca("Test", keys="forger")
    assert forged_ca.device_ca.subject == CA.device_ca.subject and forged_ca.device_ca != CA.device_ca
    impostor = issue_device_identity(forged_ca, "FORGED", key_name="forger-device")
    assert impostor.certificate.issuer == CA.device_ca.subject
    _refused(sign_machine_info(machine_info_plist(), impostor, ca=forged_ca), "configured device certificate")


def test_a_signer_whose_key_is_not_its_certificates_is_refused() -> None:
    other_key = issue_device_identity(CA, "OTHER", key_name="other")
    body = sign_machine_info(machine_info_plist(), other_key, certificates=[DEVICE.certificate, CA.device_ca])
    # The certificate carried is DEVICE's, the signature other_key's: the signer is not found, or does not verify.
    _refused(body, "signer")


def test_two_signers_are_refused() -> None:
    second = issue_device_identity(CA, "SECOND", key_name="second")
    _refused(sign_machine_info(machine_info_plist(), DEVICE, ca=CA, signers=[DEVICE, second]), "2 signers")


def test_a_wrong_message_digest_is_refused() -> None:
    _refused(sign_machine_info(machine_info_plist(), DEVICE, ca=CA, message_digest=b"\x00" * 20), "digest")


def test_content_changed_after_signing_is_refused() -> None:
    body = sign_machine_info(machine_info_plist(), DEVICE, ca=CA, ber=False)
    tampered = body.replace(b"C8QH6T96DPNG", b"C8QH6T96DPNX")
    assert tampered != body
    _refused(tampered, "digest")


def test_a_signature_over_other_content_types_is_refused() -> None:
    _refused(sign_machine_info(machine_info_plist(), DEVICE, ca=CA, content_type="signed_data"), "content")


def test_a_signer_certificate_missing_from_the_body_is_refused() -> None:
    _refused(sign_machine_info(machine_info_plist(), DEVICE, certificates=[CA.device_ca]), "signer's certificate")


@pytest.mark.parametrize("ber", [True, False])
def test_a_truncated_body_is_refused_at_every_cut(ber: bool) -> None:
    body = sign_machine_info(machine_info_plist(), DEVICE, ca=CA, ber=ber)
    for cut in (1, 2, 10, len(body) // 3, len(body) // 2, len(body) - 2, len(body) - 1):
        _refused(body[:cut], None)


def test_bytes_after_the_end_are_refused() -> None:
    _refused(sign_machine_info(machine_info_plist(), DEVICE, ca=CA) + b"\x00", "after its end")


def test_an_oversized_body_is_refused_before_it_is_parsed() -> None:
    _refused(b"\x30\x80" + b"\x04\x01A" * (MAX_BODY_BYTES // 3 + 1), "larger than any MachineInfo")


def test_an_empty_body_and_garbage_are_refused() -> None:
    _refused(b"", "empty")
    _refused(b"not a CMS message at all", None)
    _refused(b"\x04\x03abc", "not a CMS")


def test_a_ber_bomb_is_refused_cheaply() -> None:
    depth = 20_000
    bombs = [
        b"\x30\x80" * depth + b"\x00\x00" * depth,  # nested indefinite lengths
        b"".join(bytes([0x30, 0x84]) + (6 * (depth - i)).to_bytes(4, "big") for i in range(depth)),  # lying lengths
        b"\x30\x80" + b"\x05\x00" * 20_000 + b"\x00\x00",  # a flat flood of elements
    ]
    for bomb in bombs:
        started = time.process_time()
        _refused(bomb[:MAX_BODY_BYTES], "nested deeper|more values|length|cut short")
        assert time.process_time() - started < 0.5


def test_the_ber_walk_accepts_what_it_bounds() -> None:
    nested = b"\x30\x80" * MAX_BER_DEPTH + b"\x00\x00" * MAX_BER_DEPTH
    check_ber_shape(nested)
    with pytest.raises(MachineInfoRefused, match="nested deeper"):
        check_ber_shape(b"\x30\x80" + nested + b"\x00\x00")
    with pytest.raises(MachineInfoRefused, match="primitive value"):
        check_ber_shape(b"\x04\x80\x00\x00")


def test_a_binary_plist_is_refused() -> None:
    content = plistlib.dumps(plistlib.loads(machine_info_plist()), fmt=plistlib.FMT_BINARY)
    _refused(sign_machine_info(content, DEVICE, ca=CA), "binary plist")


@pytest.mark.parametrize(
    "declaration",
    [
        b'<!DOCTYPE plist [<!ENTITY serial "C8QH6T96DPNG">]>',
        b'<!DOCTYPE plist SYSTEM "file:///etc/passwd">',
        b"<!ENTITY x 'y'>",
    ],
)
def test_an_xml_plist_with_entities_or_another_doctype_is_refused(declaration: bytes) -> None:
    plist = machine_info_plist().replace(
        b'<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
        declaration,
    )
    assert declaration in plist
    _refused(sign_machine_info(plist, DEVICE, ca=CA), "document type or entities")


@pytest.mark.parametrize("missing", ["UDID", "SERIAL", "PRODUCT", "VERSION"])
def test_a_machine_info_missing_a_required_key_is_refused(missing: str) -> None:
    plist = plistlib.loads(machine_info_plist())
    del plist[missing]
    _refused(sign_machine_info(plistlib.dumps(plist), DEVICE, ca=CA), f"lacks {missing}")


@pytest.mark.parametrize(
    ("key", "value"), [("SERIAL", 42), ("UDID", ""), ("PRODUCT", "x" * 300), ("MDM_CAN_REQUEST_SOFTWARE_UPDATE", "yes")]
)
def test_a_machine_info_with_an_unusable_value_is_refused(key: str, value: object) -> None:
    plist = plistlib.loads(machine_info_plist())
    plist[key] = value
    _refused(sign_machine_info(plistlib.dumps(plist), DEVICE, ca=CA), f"unusable {key}")


def test_a_plist_that_is_no_dictionary_is_refused() -> None:
    _refused(sign_machine_info(plistlib.dumps(["UDID"]), DEVICE, ca=CA), "not a dictionary")


def test_the_web_views_header_carries_the_same_cms_in_base64() -> None:
    body = sign_machine_info(machine_info_plist(), DEVICE, ca=CA)
    encoded = base64.b64encode(body).decode()
    assert read_device_info_header(encoded, anchors=CA.chain).serial_number == "C8QH6T96DPNG"
    wrapped = "\n".join(encoded[at : at + 64] for at in range(0, len(encoded), 64))
    assert read_device_info_header(wrapped, anchors=CA.chain).udid == "00008110-000A1B2C3D4E5F60"
    for bad in ("", "not base64!", "QUJD", "é" * 10, "A" * (MAX_BODY_BYTES * 2)):
        with pytest.raises(MachineInfoRefused):
            read_device_info_header(bad, anchors=CA.chain)


def test_a_refusal_never_echoes_the_body() -> None:
    foreign = device_ca("Foreign")
    stranger = issue_device_identity(foreign, "STRANGER", key_name="stranger")
    body = sign_machine_info(machine_info_plist(serial="SECRETSERIAL"), stranger, ca=foreign)
    refusal = _refused(body, "configured device certificate")
    assert "SECRETSERIAL" not in str(refusal)
