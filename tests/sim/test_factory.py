"""The factory: device facts, the device CA shaped like Apple's, and device identities stable across restarts."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from pippin.sim.factory_facts import PRODUCT_LINES, device_facts, luhn_valid
from pippin.sim.models import SimDevice
from tests.sim.portal_client import create_devices
from tests.simulator import RunningSimulator, run_simulator

NEW_UDID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{16}")
FACT_KEYS = {"serial_number", "udid", "product", "os_version", "build_version", "imei", "meid"}


def _facts(portal: httpx.Client, serial: str) -> dict[str, Any]:
    response = portal.get(f"/factory/devices/{serial}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _portal_device(portal: httpx.Client, serial: str) -> dict[str, Any]:
    body: dict[str, Any] = portal.get(f"/portal/devices/{serial}").json()
    return body


def _identity(portal: httpx.Client, serial: str) -> str:
    response = portal.get(f"/factory/devices/{serial}/identity.pem")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-pem-file")
    return response.text


def _check_sha1_signature(certificate: x509.Certificate, issuer: x509.Certificate) -> None:
    """What a verifier of Apple's chain must do by hand: ``cryptography``'s own checks refuse SHA-1."""
    assert certificate.issuer == issuer.subject
    assert certificate.signature_hash_algorithm is not None
    assert certificate.signature_hash_algorithm.name == "sha1"
    public_key = issuer.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    sha1 = hashes.SHA1()  # noqa: S303 - Apple's device chain is SHA-1
    public_key.verify(certificate.signature, certificate.tbs_certificate_bytes, padding.PKCS1v15(), sha1)


def test_every_device_has_facts_matching_its_model_and_what_the_portal_reports(sim: RunningSimulator) -> None:
    serials = create_devices(sim.portal, 60, seed=11)
    seen_wifi_ipad = seen_cellular_ipad = False
    for serial in serials:
        facts, device = _facts(sim.portal, serial), _portal_device(sim.portal, serial)
        assert set(facts) == FACT_KEYS and facts["serial_number"] == serial
        line = PRODUCT_LINES[device["model"]]
        assert facts["product"] in (line.wifi_product, line.cellular_product)
        assert facts["product"].startswith(device["device_family"])
        assert re.fullmatch(r"18(\.\d+){1,2}", facts["os_version"])
        assert re.fullmatch(r"22[A-G]\d{2,4}", facts["build_version"])
        if line.chip_id >= 0x8020:
            assert NEW_UDID.fullmatch(facts["udid"]) and facts["udid"].startswith(f"{line.chip_id:08X}-")
        else:
            assert re.fullmatch(r"[0-9a-f]{40}", facts["udid"])
        imeis = device["extra"].get("imei")
        if device["device_family"] == "iPhone" or imeis:
            assert facts["imei"] == imeis[0] and luhn_valid(facts["imei"]) and len(facts["imei"]) == 15
            assert facts["meid"] == device["extra"]["meid"][0] and len(facts["meid"]) == 14
            assert facts["product"] == (line.cellular_product or line.wifi_product)
            seen_cellular_ipad |= device["device_family"] == "iPad"
        else:
            assert facts["imei"] is None and facts["meid"] is None
            assert facts["product"] == line.wifi_product
            seen_wifi_ipad = True
    assert seen_wifi_ipad and seen_cellular_ipad
    assert len({_facts(sim.portal, serial)["udid"] for serial in serials}) == len(serials)


def test_facts_of_devices_outside_the_catalogue() -> None:
    """A model renamed in the portal keeps its family's product; an iPhone without IMEIs still has a valid one."""
    now = datetime.now(UTC)
    renamed = SimDevice(serial_number="C39ZZ1Q2N7", model="Some iPad", device_family="iPad", extra={}, created_at=now)
    facts = device_facts(renamed)
    assert facts.product == "iPad13,18" and facts.imei is None
    bare = SimDevice(serial_number="F17XX0A1B2", model="iPhone 15", device_family="iPhone", extra={}, created_at=now)
    facts = device_facts(bare)
    assert facts.product == "iPhone15,4" and facts.imei is not None and luhn_valid(facts.imei)
    assert facts.meid == facts.imei[:14]
    assert device_facts(bare) == facts
    old = SimDevice(serial_number="DMPXK0ABJF8J", model="iPad (7th generation)", device_family="iPad", extra={})
    assert re.fullmatch(r"[0-9a-f]{40}", device_facts(old).udid)
    mac = device_facts(SimDevice(serial_number="C02ZZ0ABCDEF", model="Mac 15", device_family="Mac", extra={}))
    assert mac.product == "Mac14,2" and mac.imei is None and mac.os_version.startswith("15.")


def test_the_device_ca_has_apples_shape(sim: RunningSimulator) -> None:
    response = sim.portal.get("/factory/device-ca.pem")
    assert response.status_code == 200
    device_ca, intermediate, root = x509.load_pem_x509_certificates(response.content)
    chain = (device_ca, intermediate, root)
    names = [cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for cert in chain]
    assert names == ["Apple iPhone Device CA", "Apple iPhone Certification Authority", "Apple Root CA"]
    assert device_ca.issuer == intermediate.subject and intermediate.issuer == root.subject == root.issuer
    _check_sha1_signature(device_ca, intermediate)
    _check_sha1_signature(intermediate, root)
    _check_sha1_signature(root, root)
    now = datetime.now(UTC)
    assert device_ca.not_valid_after_utc < now and intermediate.not_valid_after_utc < now
    assert root.not_valid_before_utc < now < root.not_valid_after_utc
    for cert in (device_ca, intermediate, root):
        assert isinstance(cert.public_key(), rsa.RSAPublicKey)
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # Made once: asked again, the same chain.
    assert sim.portal.get("/factory/device-ca.pem").content == response.content


def test_a_device_identity_is_its_key_then_its_certificate_then_the_chain(sim: RunningSimulator) -> None:
    (serial,) = create_devices(sim.portal, 1, family="iPhone")
    text = _identity(sim.portal, serial)
    assert text.startswith("-----BEGIN PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(text.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    certificate, *chain = x509.load_pem_x509_certificates(text.encode())
    assert chain == x509.load_pem_x509_certificates(sim.portal.get("/factory/device-ca.pem").content)
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()
    udid = _facts(sim.portal, serial)["udid"]
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == udid
    _check_sha1_signature(certificate, chain[0])
    # Valid itself, though its issuer expired years ago: dates cannot decide.
    assert certificate.not_valid_before_utc < datetime.now(UTC) < certificate.not_valid_after_utc
    assert certificate.not_valid_before_utc > chain[0].not_valid_after_utc
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert _identity(sim.portal, serial) == text


def test_facts_keys_and_ca_survive_a_restart(tmp_path: Path) -> None:
    with run_simulator(tmp_path / "sim") as first:
        serials = create_devices(first.portal, 3)
        before = {serial: (_facts(first.portal, serial), _identity(first.portal, serial)) for serial in serials}
        ca = first.portal.get("/factory/device-ca.pem").text
    with run_simulator(tmp_path / "sim") as second:
        assert second.portal.get("/factory/device-ca.pem").text == ca
        for serial, (facts, identity) in before.items():
            assert _facts(second.portal, serial) == facts
            assert _identity(second.portal, serial) == identity


def test_racing_first_requests_get_one_identity(sim: RunningSimulator) -> None:
    (serial,) = create_devices(sim.portal, 1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: _identity(sim.portal, serial), range(4)))
    assert len(set(answers)) == 1


def test_unknown_serials_and_paths_answer_the_portals_json_errors(sim: RunningSimulator) -> None:
    for path in ("/factory/devices/NOSUCHSERIAL", "/factory/devices/NOSUCHSERIAL/identity.pem"):
        response = sim.portal.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "device_not_found"
    response = sim.portal.get("/factory/devices/" + "X" * 65)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    response = sim.portal.get("/factory/nothing-here")
    assert response.status_code == 404 and response.headers["content-type"].startswith("application/json")
    assert sim.portal.post("/factory/device-ca.pem").status_code == 405
