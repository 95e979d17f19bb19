"""APNs faults through ``PUT /portal/faults``, the DEP service's schema: Apple's error answers, dropped
connections, GOAWAY and slow answers, scripted in order or drawn at seeded rates."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.sim.apns import APNsWorld


def reason(response: httpx.Response) -> str:
    value: str = json.loads(response.content)["reason"]
    return value


def test_scripted_answers_come_in_order_then_the_push_goes_through(apns: APNsWorld) -> None:
    apns.set_faults(
        {
            "post_apns_device_responses": [
                {"count": 1, "response": "too_many_requests"},
                {"count": 1, "response": "internal_server_error"},
                {"count": 1, "response": "service_unavailable"},
                {"count": 1, "response": "shutdown"},
                {"count": 1, "response": "bad_certificate"},
                {"count": 1, "response": "bad_certificate_environment"},
                {"count": 1, "response": "expired_provider_token"},
                {"count": 1, "response": "forbidden"},
                {"count": 1, "response": "success"},
            ]
        }
    )
    token = apns.register()
    with apns.client() as provider:
        answers = [provider.push(token, apns_expiration="4102444800") for _ in range(10)]
    assert [(a.status_code, reason(a) if a.content else "") for a in answers] == [
        (429, "TooManyRequests"),
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
        (503, "Shutdown"),
        (403, "BadCertificate"),
        (403, "BadCertificateEnvironment"),
        (403, "ExpiredProviderToken"),
        (403, "Forbidden"),
        (200, ""),
        (200, ""),
    ]
    assert all(answer.headers.get("apns-id") for answer in answers)
    assert apns.stats(token)["received"] == 2  # a refused push is not kept
    progress = apns.sim.portal.get("/portal/faults").json()["progress"]
    assert progress["requests"]["post_apns_device"] == 10


def test_a_dropped_connection_breaks_the_push_and_a_new_connection_works(apns: APNsWorld) -> None:
    apns.set_faults({"post_apns_device_responses": [{"count": 1, "response": "dropped_connection"}]})
    token = apns.register()
    with apns.client() as provider:
        with pytest.raises(httpx.TransportError):
            provider.push(token, apns_expiration="4102444800")
        assert provider.push(token, apns_expiration="4102444800").status_code == 200
    assert apns.stats(token)["received"] == 1


def test_goaway_ends_the_connection_with_apples_debug_data_and_the_push_unprocessed(apns: APNsWorld) -> None:
    apns.set_faults({"post_apns_device_responses": [{"count": 1, "response": "goaway"}]})
    token = apns.register()
    with apns.client() as provider:
        with pytest.raises(httpx.RemoteProtocolError, match="ConnectionTerminated"):
            provider.push(token, apns_expiration="4102444800")
        assert provider.push(token, apns_expiration="4102444800").status_code == 200
    assert apns.stats(token)["received"] == 1


def test_a_slow_answer_still_answers(apns: APNsWorld) -> None:
    apns.set_faults({"latency_seconds": 0.05, "post_apns_device_responses": [{"count": 1, "response": "latency"}]})
    token = apns.register()
    with apns.client() as provider:
        assert provider.push(token).status_code == 200


def test_seeded_rates_draw_the_same_faults_every_time(apns: APNsWorld) -> None:
    config = {"seed": 11, "rates": {"post_apns_device": {"too_many_requests": 0.3, "service_unavailable": 0.2}}}
    token = apns.register()
    runs = []
    for _ in range(2):
        apns.set_faults(config)
        with apns.client() as provider:
            runs.append([provider.push(token).status_code for _ in range(30)])
    assert runs[0] == runs[1]
    assert {200, 429, 503} == set(runs[0])


def test_rates_for_all_dep_endpoints_leave_apns_alone(apns: APNsWorld) -> None:
    apns.set_faults({"rates": {"all": {"internal_server_error": 1.0}}})
    with apns.client() as provider:
        assert provider.push(apns.register()).status_code == 200


@pytest.mark.parametrize(
    "config",
    [
        {"rates": {"post_apns_device": {"repeated_cursor": 0.5}}},
        {"rates": {"post_apns_device": {"session_expired": 0.5}}},
        {"rates": {"post_apns_device": {"too_many_requests": 0.7, "goaway": 0.7}}},
        {"rates": {"post_devices_sync": {"goaway": 0.1}}},
        {"post_apns_device_responses": [{"count": 1, "response": "bad_request_foo"}]},
        {"post_apns_device_responses": [{"count": 1, "response": "failed"}]},
        {"rates": {"post_apns_devices": {"shutdown": 0.1}}},
    ],
)
def test_faults_that_apns_cannot_play_are_refused_and_change_nothing(apns: APNsWorld, config: object) -> None:
    response = apns.sim.portal.put("/portal/faults", json=config)
    assert response.status_code == 400 and response.json()["error"]
    assert apns.sim.portal.get("/portal/faults").json()["progress"] == {}
    with apns.client() as provider:
        assert provider.push(apns.register()).status_code == 200
