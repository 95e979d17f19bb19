"""The Push Certificates Portal: a vendor-signed request becomes a push certificate; renewal keeps the topic."""

from __future__ import annotations

import base64
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import func, select

from pippin.sim import push_ca, stored_authorities
from pippin.sim.models import SimCertificateAuthority
from pippin.sim.push_ca import APNS_PRODUCTION_OID, MDM_CSR_SIGNING_OID, push_ca_certificates
from pippin.sim.state import open_state
from tests.sim.push_client import (
    Vendor,
    create_push_certificate,
    csr_der,
    customer_key,
    get_vendor,
    renew,
    request_plist,
    signed_request,
    upload,
)
from tests.simulator import RunningSimulator, run_simulator


def _apple_id() -> str:
    return f"admin-{uuid.uuid4().hex[:8]}@example.com"


def _load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_vendor_certificate_is_issued_by_the_wwdr_intermediate_with_the_mdm_csr_marker(
    apple: RunningSimulator,
) -> None:
    vendor = get_vendor(apple.portal, "Acme MDM")
    chain = x509.load_pem_x509_certificates(vendor.chain_pem.encode())
    assert chain[0] == vendor.certificate and len(chain) == 3
    intermediate, root = chain[1], chain[2]
    vendor.certificate.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert "Worldwide Developer Relations" in intermediate.subject.rfc4514_string()
    marker = vendor.certificate.extensions.get_extension_for_oid(MDM_CSR_SIGNING_OID)
    assert isinstance(marker.value, x509.UnrecognizedExtension) and marker.value.value == b"\x05\x00"
    common_name = vendor.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == "MDM Vendor: Acme MDM"
    assert vendor.certificate.public_key().public_numbers() == vendor.key.public_key().public_numbers()
    assert vendor.certificate.not_valid_after_utc - vendor.certificate.not_valid_before_utc == timedelta(days=365)


def test_full_flow_issues_a_push_certificate_and_renewal_keeps_the_topic(apple: RunningSimulator) -> None:
    apple_id = _apple_id()
    vendor = get_vendor(apple.portal)
    first = create_push_certificate(apple.portal, vendor, apple_id=apple_id)

    topic = first["topic"]
    topic_uuid = topic.removeprefix("com.apple.mgmt.External.")
    assert topic.startswith("com.apple.mgmt.External.") and str(uuid.UUID(topic_uuid)) == topic_uuid
    certificate = _load(first["certificate_pem"])
    subject = certificate.subject
    assert subject.rdns[0].get_attributes_for_oid(NameOID.USER_ID)[0].value == topic
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"APSP:{topic_uuid}"
    assert certificate.public_key().public_numbers() == customer_key().public_key().public_numbers()
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc in (
        timedelta(days=365),
        timedelta(days=366),
    )
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert certificate.extensions.get_extension_for_oid(APNS_PRODUCTION_OID)
    (push_ca,) = push_ca_certificates(apple.state)
    certificate.verify_directly_issued_by(push_ca)
    assert first["status"] == "active" and first["apple_id"] == apple_id and "MDM Vendor" in first["vendor"]

    renewed_response = renew(apple.portal, first["serial"], signed_request(vendor, csr_der(customer_key(1))))
    assert renewed_response.status_code == 404  # the default Apple ID is not the owner
    renewed_response = renew(
        apple.portal, first["serial"], signed_request(vendor, csr_der(customer_key(1))), apple_id=apple_id
    )
    assert renewed_response.status_code == 201, renewed_response.text
    renewed = renewed_response.json()
    assert renewed["topic"] == topic and renewed["serial"] != first["serial"]
    assert renewed["renewed_from_serial"] == first["serial"]
    assert _load(renewed["certificate_pem"]).public_key().public_numbers() == (
        customer_key(1).public_key().public_numbers()
    )

    # Renewing by topic renews the topic's newest certificate; Apple IDs ignore case.
    by_topic = renew(apple.portal, topic, signed_request(vendor), apple_id=apple_id.upper())
    assert by_topic.status_code == 201 and by_topic.json()["topic"] == topic
    assert by_topic.json()["renewed_from_serial"] == renewed["serial"]

    another = create_push_certificate(apple.portal, vendor, apple_id=apple_id)
    assert another["topic"] != topic

    listed = apple.portal.get("/portal/push/certificates", params={"apple_id": apple_id}).json()["certificates"]
    assert [(item["topic"], item["status"]) for item in listed] == [
        (another["topic"], "active"),
        (topic, "active"),
        (topic, "renewed"),
        (topic, "renewed"),
    ]
    assert all("certificate_pem" not in item and item["not_after"] for item in listed)


def test_download_gives_the_pem_to_its_owner_only(apple: RunningSimulator) -> None:
    apple_id = _apple_id()
    issued = create_push_certificate(apple.portal, get_vendor(apple.portal), apple_id=apple_id)
    response = apple.portal.get(f"/portal/push/certificates/{issued['serial']}/pem", params={"apple_id": apple_id})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-pem-file")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text == issued["certificate_pem"]
    by_topic = apple.portal.get(f"/portal/push/certificates/{issued['topic']}", params={"apple_id": apple_id})
    assert by_topic.status_code == 200 and by_topic.json()["serial"] == issued["serial"]
    for path in (f"/portal/push/certificates/{issued['serial']}", f"/portal/push/certificates/{issued['serial']}/pem"):
        other = apple.portal.get(path, params={"apple_id": "someone.else@example.com"})
        assert other.status_code == 404 and other.json()["error"] == "certificate_not_found"
    assert apple.portal.get("/portal/push/certificates", params={"apple_id": "nobody"}).status_code == 400


def test_renewal_from_another_apple_id_is_refused_and_changes_nothing(apple: RunningSimulator) -> None:
    owner = _apple_id()
    vendor = get_vendor(apple.portal)
    issued = create_push_certificate(apple.portal, vendor, apple_id=owner)
    intruder = _apple_id()
    for identifier in (issued["serial"], issued["topic"]):
        response = renew(apple.portal, identifier, signed_request(vendor), apple_id=intruder)
        assert response.status_code == 404 and response.json()["error"] == "certificate_not_found"
        assert "Apple ID that created it" in response.json()["detail"]
    assert apple.portal.get("/portal/push/certificates", params={"apple_id": intruder}).json() == {"certificates": []}
    listed = apple.portal.get("/portal/push/certificates", params={"apple_id": owner}).json()["certificates"]
    assert [item["status"] for item in listed] == ["active"]


def test_expiry_and_the_renewal_grace_period_follow_the_simulator_clock(sim: RunningSimulator) -> None:
    vendor = get_vendor(sim.portal)
    issued = create_push_certificate(sim.portal, vendor)
    sim.state.advance_clock(366 * 24 * 3600)
    listed = sim.portal.get("/portal/push/certificates", params={"apple_id": "admin@example.com"}).json()
    assert listed["certificates"][0]["status"] == "expired"
    # A fresh vendor certificate signs the renewal, within 30 days of expiry.
    fresh = get_vendor(sim.portal)
    renewed = renew(sim.portal, issued["serial"], signed_request(fresh))
    assert renewed.status_code == 201 and renewed.json()["topic"] == issued["topic"]
    assert renewed.json()["status"] == "active"

    late = create_push_certificate(sim.portal, fresh)
    sim.state.advance_clock(400 * 24 * 3600)
    newer_vendor = get_vendor(sim.portal)
    refused = renew(sim.portal, late["serial"], signed_request(newer_vendor))
    assert refused.status_code == 409 and refused.json()["error"] == "renewal_period_over"
    assert "new topic" in refused.json()["detail"]


def test_an_expired_vendor_certificate_is_refused(sim: RunningSimulator) -> None:
    """Expired by the wall clock, by which vendors date their certificates (the simulator's clock has no say)."""
    with sim.state.transaction() as session:
        authorities = push_ca.load_authorities(session, now=sim.state.clock.now())
    a_year_ago = datetime.now(UTC) - timedelta(days=366)
    issued = push_ca.issue_vendor_certificate(authorities, vendor_name="Old", now=a_year_ago)
    chain_pem = "".join(stored_authorities.certificate_pem(cert) for cert in [issued.certificate, *issued.chain])
    request = signed_request(Vendor(certificate=issued.certificate, key=issued.private_key, chain_pem=chain_pem))
    response = upload(sim.portal, request)
    assert response.status_code == 400 and response.json()["error"] == "vendor_certificate_expired"
    listed = sim.portal.get("/portal/push/certificates", params={"apple_id": "admin@example.com"}).json()
    assert listed == {"certificates": []}


def test_authorities_and_certificates_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "sim"
    with run_simulator(data) as first:
        vendor = get_vendor(first.portal)
        issued = create_push_certificate(first.portal, vendor)
        authorities = first.portal.get("/portal/push/authorities").json()
        ca_before = push_ca_certificates(first.state)
    with run_simulator(data) as second:
        assert second.portal.get("/portal/push/authorities").json() == authorities
        assert push_ca_certificates(second.state) == ca_before
        got = second.portal.get(
            f"/portal/push/certificates/{issued['serial']}", params={"apple_id": issued["apple_id"]}
        )
        assert got.status_code == 200 and got.json()["certificate_pem"] == issued["certificate_pem"]
        # The vendor certificate issued before the restart still signs requests the portal accepts.
        renewed = renew(second.portal, issued["topic"], signed_request(vendor))
        assert renewed.status_code == 201 and renewed.json()["topic"] == issued["topic"]
    assert authorities["push_ca_pem"].startswith("-----BEGIN CERTIFICATE-----")


def test_the_vendor_signature_is_pkcs1_sha256_over_the_csr_der(apple: RunningSimulator) -> None:
    """A signature over the CSR's PEM, or with PSS, is not what Apple verifies: both are refused."""
    vendor = get_vendor(apple.portal)
    csr = csr_der()
    pem = x509.load_der_x509_csr(csr).public_bytes(serialization.Encoding.PEM)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    for signature in (
        vendor.key.sign(pem, padding.PKCS1v15(), hashes.SHA256()),
        vendor.key.sign(csr, pss, hashes.SHA256()),
        vendor.key.sign(csr, padding.PKCS1v15(), hashes.SHA384()),
    ):
        body = base64.b64encode(request_plist(csr, chain_pem=vendor.chain_pem, signature=signature)).decode()
        response = upload(apple.portal, body, apple_id=_apple_id())
        assert response.status_code == 400 and response.json()["error"] == "bad_signature"


def test_the_openapi_documents_the_push_portal(apple: RunningSimulator) -> None:
    paths = apple.portal.get("/portal/openapi.json").json()["paths"]
    for path in (
        "/portal/push/vendor-certificates",
        "/portal/push/authorities",
        "/portal/push/certificates",
        "/portal/push/certificates/{identifier}",
        "/portal/push/certificates/{identifier}/pem",
        "/portal/push/certificates/{identifier}/renew",
    ):
        assert path in paths, path
    schemas = apple.portal.get("/portal/openapi.json").json()["components"]["schemas"]
    assert set(schemas["PushCertificateUpload"]["required"]) == {"apple_id", "request"}
    assert "topic" in schemas["PushCertificateRead"]["properties"]


def test_concurrent_first_use_makes_one_set_of_authorities(tmp_path: Path) -> None:
    state = open_state(tmp_path / "sim")
    try:
        barrier = threading.Barrier(4)

        def first_use() -> list[x509.Certificate]:
            barrier.wait()
            return push_ca_certificates(state)

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda _: first_use(), range(4)))
        assert all(result == results[0] for result in results)
        with state.transaction() as session:
            assert session.scalar(select(func.count()).select_from(SimCertificateAuthority)) == 3
    finally:
        state.engine.dispose()
