"""Certificates uploaded to the portals are judged by the wall clock, not the simulator's settable one.

Clients date their certificates by real time; a test that moves the simulator's clock ahead (to age tokens or
cursors) must still be able to upload them, and a certificate the real clock says is not valid yet (or any more)
is refused whatever the simulator's clock says.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509

from tests.sim.portal_client import certificate_pem, create_server, rsa_key
from tests.sim.push_client import get_vendor, signed_request, upload
from tests.simulator import RunningSimulator

AHEAD = timedelta(days=400)


def _advance(sim: RunningSimulator, by: timedelta) -> None:
    response = sim.portal.post("/portal/clock", json={"advance_seconds": by.total_seconds()})
    assert response.status_code == 200, response.text


def _create(sim: RunningSimulator, pem: str) -> tuple[int, str]:
    body = {"name": "Wall MDM", "public_key_pem": pem, "admin_apple_id": "admin@example.com"}
    response = sim.portal.post("/portal/mdm-servers", json=body)
    return response.status_code, response.json().get("error", "")


def test_a_server_certificate_valid_now_is_accepted_with_the_clock_far_ahead(sim: RunningSimulator) -> None:
    _advance(sim, AHEAD)
    pem = certificate_pem(rsa_key(), days=30)
    server_uuid = create_server(sim.portal, pem=pem)
    assert sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token").status_code == 200
    replaced = sim.portal.put(
        f"/portal/mdm-servers/{server_uuid}/public-key", json={"public_key_pem": certificate_pem(rsa_key(), days=2)}
    )
    assert replaced.status_code == 200, replaced.text


def test_server_certificates_outside_their_real_validity_are_refused(sim: RunningSimulator) -> None:
    _advance(sim, AHEAD)
    now = datetime.now(UTC)
    # Valid by the simulator's clock (now + 400 days), not yet by the real one.
    future = certificate_pem(rsa_key(), not_before=now + timedelta(days=2), days=800)
    assert _create(sim, future) == (400, "certificate_not_yet_valid")
    # Expired by the real clock.
    assert _create(sim, certificate_pem(rsa_key(), not_before=now - timedelta(days=3), days=1)) == (
        400,
        "certificate_expired",
    )
    server_uuid = create_server(sim.portal)
    refused = sim.portal.put(f"/portal/mdm-servers/{server_uuid}/public-key", json={"public_key_pem": future})
    assert refused.status_code == 400 and refused.json()["error"] == "certificate_not_yet_valid"


def test_push_requests_are_checked_against_the_wall_clock(sim: RunningSimulator) -> None:
    vendor = get_vendor(sim.portal, "Early Vendor")
    _advance(sim, AHEAD)
    # The vendor certificate (valid a year from the real now) is past its end by the simulator's clock.
    response = upload(sim.portal, signed_request(vendor))
    assert response.status_code == 201, response.text

    later = get_vendor(sim.portal, "Later Vendor")
    wall = datetime.now(UTC)
    assert wall - timedelta(days=2) < later.certificate.not_valid_before_utc <= wall
    assert upload(sim.portal, signed_request(later)).status_code == 201
    chain = x509.load_pem_x509_certificates(later.chain_pem.encode())
    assert chain[0] == later.certificate
