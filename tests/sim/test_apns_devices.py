"""The device side of APNs on the simulator's HTTP app: tokens, waits, deletion, counts, the TLS CA, its docs.

Bad input is refused with the portal's JSON error ``{"error", "detail"}`` and changes nothing.
"""

from __future__ import annotations

import re

import pytest

from tests.simulator import RunningSimulator

TOPIC = "com.apple.mgmt.External.2f7c8e44-1d0a-4b53-9f55-6d7a1f1c3b9e"


def register(sim: RunningSimulator, topic: str = TOPIC) -> str:
    response = sim.portal.post("/apns/tokens", json={"topic": topic})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def test_a_device_gets_a_new_64_hex_token_for_its_topic(sim: RunningSimulator) -> None:
    response = sim.portal.post("/apns/tokens", json={"topic": TOPIC})
    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch(r"[0-9a-f]{64}", body["token"])
    assert body["topic"] == TOPIC and body["unregistered_at"] is None
    assert register(sim) != body["token"]
    shown = sim.portal.get(f"/apns/tokens/{body['token']}").json()
    assert shown["topic"] == TOPIC and shown["stats"]["received"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"topic": ""},
        {"topic": 7},
        {"topic": None},
        {"topic": "com.apple.mgmt External"},
        {"topic": "com.apple.mgmt\u0000x"},
        {"topic": "x" * 256},
        {"topic": TOPIC, "extra": 1},
        [TOPIC],
    ],
)
def test_a_bad_registration_is_refused(sim: RunningSimulator, body: object) -> None:
    response = sim.portal.post("/apns/tokens", json=body)
    assert response.status_code == 400 and response.json()["error"] and response.json()["detail"]
    assert sim.portal.get("/apns/stats").json()["tokens"] == 0


@pytest.mark.parametrize("raw", [b"", b"not json", b"\xff", b'{"topic": NaN}', b"[" * 5000])
def test_a_registration_that_is_not_json_is_refused(sim: RunningSimulator, raw: bytes) -> None:
    response = sim.portal.post("/apns/tokens", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]


def test_a_huge_registration_body_is_refused_unread(sim: RunningSimulator) -> None:
    response = sim.portal.post("/apns/tokens", content=b"{" + b" " * (9 * 1024 * 1024) + b"}")
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"


@pytest.mark.parametrize("timeout", ["-1", "abc", "nan", "inf", "301", "1e9", ""])
def test_a_bad_timeout_is_refused(sim: RunningSimulator, timeout: str) -> None:
    token = register(sim)
    response = sim.portal.get(f"/apns/tokens/{token}/next", params={"timeout": timeout})
    assert response.status_code == 400 and response.json()["error"] == "bad_timeout"


@pytest.mark.parametrize("path", ["/apns/tokens/{bad}/next", "/apns/tokens/{bad}"])
@pytest.mark.parametrize("bad", ["xyz", "ab" * 31, "ab" * 33, "zz" * 32])
def test_a_malformed_token_is_refused(sim: RunningSimulator, path: str, bad: str) -> None:
    response = sim.portal.get(path.format(bad=bad))
    assert response.status_code == 400 and response.json()["error"] == "bad_token"
    assert sim.portal.delete(f"/apns/tokens/{bad}").status_code == 400


def test_an_unknown_token_is_not_found_everywhere(sim: RunningSimulator) -> None:
    unknown = "ab" * 32
    for response in (
        sim.portal.get(f"/apns/tokens/{unknown}"),
        sim.portal.get(f"/apns/tokens/{unknown}/next", params={"timeout": "0"}),
        sim.portal.delete(f"/apns/tokens/{unknown}"),
        sim.portal.get("/apns/stats", params={"token": unknown}),
    ):
        assert response.status_code == 404 and response.json()["error"] == "unknown_token"


def test_deleting_a_token_twice_keeps_the_first_time(sim: RunningSimulator) -> None:
    token = register(sim)
    first = sim.portal.delete(f"/apns/tokens/{token}")
    assert first.status_code == 200 and first.json()["unregistered_at"]
    again = sim.portal.delete(f"/apns/tokens/{token.upper()}")
    assert again.status_code == 200 and again.json()["timestamp"] == first.json()["timestamp"]
    assert sim.portal.get(f"/apns/tokens/{token}/next").status_code == 410


def test_wrong_methods_and_paths_under_apns_answer_json(sim: RunningSimulator) -> None:
    assert sim.portal.put("/apns/tokens").status_code == 405
    missing = sim.portal.get("/apns/nothing")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/json")


def test_the_tls_ca_is_served_as_pem(sim: RunningSimulator) -> None:
    from cryptography import x509

    response = sim.portal.get("/apns/ca.pem")
    assert response.status_code == 200
    assert x509.load_pem_x509_certificate(response.content).extensions
    assert sim.portal.get("/apns/ca.pem").content == response.content  # one CA, not one per request


def test_the_openapi_documents_the_device_side(sim: RunningSimulator) -> None:
    paths = sim.portal.get("/portal/openapi.json").json()["paths"]
    for path in (
        "/apns/tokens",
        "/apns/tokens/{token}",
        "/apns/tokens/{token}/next",
        "/apns/stats",
        "/apns/ca.pem",
    ):
        assert path in paths, path
    wait = paths["/apns/tokens/{token}/next"]["get"]
    assert {"200", "204", "410"} <= set(wait["responses"])
    assert any(parameter["name"] == "timeout" for parameter in wait["parameters"])
    assert "delete" in paths["/apns/tokens/{token}"]
