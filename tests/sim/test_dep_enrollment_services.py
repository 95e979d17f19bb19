"""Beta enrollment tokens, account-driven enrollment service discovery and replacement details (reference 3.11)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pippin.sim.enrollment_services import BETA_OPERATING_SYSTEMS
from tests.sim.apple import DEPTestClient, ServerCredentials, create_test_server, seed_devices
from tests.simulator import RunningSimulator

DISCOVERY = "/account-driven-enrollment/profile"


@pytest.fixture
def beta_reset(apple: RunningSimulator) -> Iterator[RunningSimulator]:
    """Beta access back on with its tokens after the test, whatever the test did to them."""
    tokens = apple.portal.get("/portal/beta-enrollment").json()["tokens"]
    yield apple
    assert apple.portal.put("/portal/beta-enrollment", json={"enabled": True, "tokens": tokens}).status_code == 200


def test_beta_enrollment_tokens_until_the_organisation_turns_beta_access_off(
    beta_reset: RunningSimulator, client: DEPTestClient
) -> None:
    tokens = client.ok("GET", "/os-beta-enrollment/tokens")["betaEnrollmentTokens"]
    assert tokens and all(set(token) == {"token", "title", "os"} for token in tokens)
    assert {token["os"] for token in tokens} <= set(BETA_OPERATING_SYSTEMS)
    assert client.ok("GET", "/os-beta-enrollment/tokens")["betaEnrollmentTokens"] == tokens

    mine = [{"token": "tok-1", "title": "iOS 27 Developer Beta", "os": "iOS"}]
    assert beta_reset.portal.put("/portal/beta-enrollment", json={"enabled": True, "tokens": mine}).status_code == 200
    assert client.ok("GET", "/os-beta-enrollment/tokens") == {"betaEnrollmentTokens": mine}

    assert beta_reset.portal.put("/portal/beta-enrollment", json={"enabled": False}).json()["tokens"] == mine
    response = client.call("GET", "/os-beta-enrollment/tokens")
    assert (response.status_code, response.text) == (403, "APPLE_SEED_FOR_IT_TURNED_OFF")


def test_bad_beta_settings_are_refused_and_change_nothing(beta_reset: RunningSimulator) -> None:
    before = beta_reset.portal.get("/portal/beta-enrollment").json()
    for body in (
        {"enabled": True, "tokens": [{"token": "t", "title": "x", "os": "Windows"}]},
        {"enabled": True, "tokens": [{"token": "", "title": "x", "os": "iOS"}]},
        {"enabled": True, "tokens": [{"token": "t", "title": "x"}]},
        {"enabled": "yes"},
        {"tokens": []},
    ):
        response = beta_reset.portal.put("/portal/beta-enrollment", json=body)
        assert response.status_code == 400, body
        assert response.json()["error"] in ("invalid_field", "invalid_request")
    assert beta_reset.portal.get("/portal/beta-enrollment").json() == before


def test_service_discovery_is_set_read_and_removed_per_server(apple: RunningSimulator, client: DEPTestClient) -> None:
    response = client.call("GET", DISCOVERY)
    assert (response.status_code, response.text) == (404, "NOT_FOUND")
    url = "https://mdm.example.com/.well-known/com.apple.remotemanagement"
    stored = client.ok("POST", DISCOVERY, json={"mdm_service_discovery_url": url})
    assert client.ok("GET", DISCOVERY) == stored
    assert stored["mdm_service_discovery_url"] == url
    assert stored["last_updated_timestamp"].endswith("Z")

    with DEPTestClient(apple.base_url, create_test_server(apple.state)) as other:
        assert other.call("GET", DISCOVERY).status_code == 404

    assert client.ok("DELETE", DISCOVERY) == {}
    assert client.call("GET", DISCOVERY).status_code == 404
    assert client.ok("DELETE", DISCOVERY) == {}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "MDM_SERVICE_DISCOVERY_URL_REQUIRED"),
        ({"mdm_service_discovery_url": ""}, "MDM_SERVICE_DISCOVERY_URL_REQUIRED"),
        ({"mdm_service_discovery_url": None}, "MDM_SERVICE_DISCOVERY_URL_REQUIRED"),
        ({"mdm_service_discovery_url": "http://mdm.example.com/discovery"}, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID"),
        ({"mdm_service_discovery_url": "https:///no-host"}, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID"),
        ({"mdm_service_discovery_url": "https://mdm.example.com:99999/"}, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID"),
        ({"mdm_service_discovery_url": "https://mdm.example.com/a b"}, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID"),
        ({"mdm_service_discovery_url": "https://x.example/" + "a" * 2000}, "MDM_SERVICE_DISCOVERY_URL_NOT_VALID"),
        ({"mdm_service_discovery_url": 7}, "MALFORMED_REQUEST_BODY"),
    ],
)
def test_bad_discovery_urls_are_refused_with_apples_codes(client: DEPTestClient, body: object, code: str) -> None:
    response = client.call("POST", DISCOVERY, json=body)
    assert (response.status_code, response.text) == (400, code)
    assert client.call("GET", DISCOVERY).status_code == 404
    response = client.call("POST", DISCOVERY, content=b"[not json")
    assert (response.status_code, response.text) == (400, "MALFORMED_REQUEST_BODY")


def test_replacement_details_of_a_device_the_portal_marked_as_a_replacement(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    original, replacement, plain = seed_devices(apple.state, server.server_id, 3)
    marked = apple.portal.post(
        f"/portal/devices/{replacement}/replacement",
        json={"original_serial_number": original, "replacement_date": "2026-03-04"},
    )
    assert marked.status_code == 201, marked.text
    details = client.ok("GET", "/device/replacementDetails", params={"device": replacement})
    assert details == {
        "serial_number": replacement,
        "original_device_serial_number": original,
        "replacement_date": "2026-03-04",
    }
    records = client.ok("POST", "/devices", json={"devices": [original, replacement, plain]})["devices"]
    assert records[replacement]["is_replacement_device"] is True
    assert records[original]["released_by_replacement"] is True
    assert "is_replacement_device" not in records[plain]
    # Older protocol versions never see the flags.
    with DEPTestClient(apple.base_url, server, version=9) as old:
        assert (
            "is_replacement_device"
            not in old.ok("POST", "/devices", json={"devices": [replacement]})["devices"][replacement]
        )
    for serial in (plain, original, "NOSUCHSERIAL", "X" * 100):
        response = client.call("GET", "/device/replacementDetails", params={"device": serial})
        assert (response.status_code, response.text) == (400, "DEVICE_NOT_FOUND"), serial
    response = client.call("GET", "/device/replacementDetails")
    assert (response.status_code, response.text) == (400, "DEVICE_ID_REQUIRED")
    # Another MDM server cannot read a device it does not hold.
    with DEPTestClient(apple.base_url, create_test_server(apple.state)) as other:
        response = other.call("GET", "/device/replacementDetails", params={"device": replacement})
        assert (response.status_code, response.text) == (400, "DEVICE_NOT_FOUND")


def test_marking_a_replacement_refuses_bad_requests(apple: RunningSimulator, server: ServerCredentials) -> None:
    first, second = seed_devices(apple.state, server.server_id, 2)
    path = f"/portal/devices/{first}/replacement"
    assert apple.portal.post(path, json={"original_serial_number": first}).status_code == 400
    assert apple.portal.post(path, json={"original_serial_number": ""}).status_code == 400
    undated = {"original_serial_number": second, "replacement_date": "2026-02-30"}
    assert apple.portal.post(path, json=undated).json()["error"] == "invalid_field"
    undated["replacement_date"] = "soon"
    assert apple.portal.post(path, json=undated).status_code == 400
    missing = apple.portal.post("/portal/devices/NOSUCHSERIAL/replacement", json={"original_serial_number": first})
    assert missing.status_code == 404 and missing.json()["error"] == "device_not_found"
    # A serial that never was in the organisation may still be the original (it left with AppleCare).
    assert apple.portal.post(path, json={"original_serial_number": "GONE0000001"}).status_code == 201
    again = apple.portal.post(path, json={"original_serial_number": second})
    assert again.status_code == 409 and again.json()["error"] == "already_replacement"


@pytest.mark.parametrize(
    ("endpoint", "method", "path"),
    [
        ("get_os_beta_enrollment_tokens", "GET", "/os-beta-enrollment/tokens"),
        ("get_account_driven_enrollment_profile", "GET", DISCOVERY),
        ("post_account_driven_enrollment_profile", "POST", DISCOVERY),
        ("delete_account_driven_enrollment_profile", "DELETE", DISCOVERY),
        ("get_device_replacementdetails", "GET", "/device/replacementDetails?device=X"),
    ],
)
def test_the_new_endpoints_take_faults_and_need_a_session(
    apple: RunningSimulator, client: DEPTestClient, endpoint: str, method: str, path: str
) -> None:
    script = {f"{endpoint}_responses": [{"count": 1, "response": "service_unavailable"}]}
    assert apple.portal.put("/portal/faults", json=script).status_code == 200
    body = {"json": {"mdm_service_discovery_url": "https://mdm.example.com/d"}} if method == "POST" else {}
    response = client.call(method, path, **body)
    assert (response.status_code, response.text) == (503, "SERVICE_UNAVAILABLE")
    assert client.call(method, path, **body).status_code in (200, 400, 404)
    unauthenticated = client.http.request(method, path, headers={"X-ADM-Auth-Session": "not-a-session"})
    assert unauthenticated.status_code in (401, 403)
    assert client.http.request(method, path).status_code in (401, 403)
