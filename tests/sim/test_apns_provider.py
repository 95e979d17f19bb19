"""The provider API, ``POST /3/device/{token}`` over HTTP/2 with a push certificate: every answer Apple gives."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import timedelta

import httpx
import pytest

from tests.sim.apns import APNsWorld
from tests.sim.push_certs import client_context, new_topic

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def reason(response: object) -> str:
    body = json.loads(response.content)  # type: ignore[attr-defined]
    value: str = body["reason"]
    return value


def test_a_push_to_a_registered_token_answers_200_with_a_generated_apns_id_over_http2(apns: APNsWorld) -> None:
    token = apns.register()
    with apns.client() as provider:
        response = provider.push(token, {"mdm": "PushMagic-1"}, apns_topic=apns.push.topic, apns_push_type="mdm")
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200 and response.content == b""
    assert UUID.fullmatch(response.headers["apns-id"])
    assert apns.stats(token)["received"] == 1


def test_the_apns_id_the_provider_sends_comes_back(apns: APNsWorld) -> None:
    token = apns.register()
    sent = str(uuid.uuid4()).upper()
    with apns.client() as provider:
        assert provider.push(token, apns_id=sent).headers["apns-id"] == sent
        refused = provider.push("00" * 32, apns_id=sent)
    assert refused.status_code == 400 and refused.headers["apns-id"] == sent


def test_an_mdm_certificate_may_omit_every_apns_header_as_nanomdm_does(apns: APNsWorld) -> None:
    token = apns.register()
    with apns.client() as provider:
        assert provider.push(token).status_code == 200
    delivered = apns.next(token)
    assert delivered.status_code == 204  # no apns-expiration: one attempt, and nobody was waiting


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"apns_topic": "com.apple.mgmt.External.someone-else"}, "TopicDisallowed"),
        ({"apns_topic": ""}, "BadTopic"),
        ({"apns_topic": "com.apple.mgmt External"}, "BadTopic"),
        ({"apns_topic": "x" * 300}, "BadTopic"),
        ({"apns_push_type": "alert"}, "InvalidPushType"),
        ({"apns_push_type": "MDM"}, "InvalidPushType"),
        ({"apns_push_type": ""}, "InvalidPushType"),
        ({"apns_priority": "7"}, "BadPriority"),
        ({"apns_priority": "ten"}, "BadPriority"),
        ({"apns_priority": "-10"}, "BadPriority"),
        ({"apns_expiration": "soon"}, "BadExpirationDate"),
        ({"apns_expiration": "-1"}, "BadExpirationDate"),
        ({"apns_expiration": "1.5"}, "BadExpirationDate"),
        ({"apns_expiration": "9" * 40}, "BadExpirationDate"),
        ({"apns_id": "not-a-uuid"}, "BadMessageId"),
        ({"apns_collapse_id": "c" * 65}, "BadCollapseId"),
    ],
)
def test_bad_headers_answer_400_with_apples_reason(apns: APNsWorld, headers: dict[str, str], expected: str) -> None:
    token = apns.register()
    with apns.client() as provider:
        response = provider.push(token, **headers)
    assert response.status_code == 400 and reason(response) == expected
    assert response.headers["content-type"] == "application/json"
    assert apns.stats(token)["received"] == 0


def test_priorities_one_five_and_ten_are_accepted(apns: APNsWorld) -> None:
    token = apns.register()
    with apns.client() as provider:
        assert [provider.push(token, apns_priority=p).status_code for p in ("1", "5", "10")] == [200, 200, 200]


def test_a_header_sent_twice_answers_duplicate_headers(apns: APNsWorld) -> None:
    token = apns.register()
    with apns.client() as provider:
        response = provider.http.post(
            f"/3/device/{token}", content=b'{"mdm":"x"}', headers=[("apns-priority", "10"), ("apns-priority", "5")]
        )
    assert response.status_code == 400 and reason(response) == "DuplicateHeaders"


@pytest.mark.parametrize(
    "token",
    ["zz" * 32, "ab" * 31, "ab" * 33, "ab" * 32 + "%20", "..%2F..%2Fetc", "ab" * 32 + "?x=1", "é" * 64],
)
def test_a_token_that_is_not_64_hex_digits_answers_bad_device_token(apns: APNsWorld, token: str) -> None:
    with apns.client() as provider:
        response = provider.push(token)
    assert response.status_code == 400 and reason(response) == "BadDeviceToken"


def test_a_well_formed_token_apns_never_issued_answers_bad_device_token(apns: APNsWorld) -> None:
    with apns.client() as provider:
        response = provider.push("0123456789abcdef" * 4)
    assert response.status_code == 400 and reason(response) == "BadDeviceToken"


def test_uppercase_hex_names_the_same_token(apns: APNsWorld) -> None:
    token = apns.register()
    with apns.client() as provider:
        assert provider.push(token.upper(), apns_expiration="4102444800").status_code == 200
    assert apns.next(token).status_code == 200


def test_a_token_of_another_topic_answers_device_token_not_for_topic(apns: APNsWorld) -> None:
    token = apns.register(new_topic())
    with apns.client() as provider:
        response = provider.push(token)
    assert response.status_code == 400 and reason(response) == "DeviceTokenNotForTopic"


def test_an_empty_body_answers_payload_empty_and_a_body_that_is_not_a_json_object_bad_payload(
    apns: APNsWorld,
) -> None:
    token = apns.register()
    with apns.client() as provider:
        assert reason(provider.push(token, content=b"")) == "PayloadEmpty"
        assert reason(provider.push(token, content=b"   ")) == "PayloadEmpty"
        for body in (b"not json", b"[1,2]", b'"mdm"', b"\xff\xfe", b'{"mdm": NaN}', b"[" * 3000):
            response = provider.push(token, content=body)
            assert response.status_code == 400 and reason(response) == "BadPayload", body
    assert apns.stats(token)["received"] == 0


def test_payloads_up_to_4096_bytes_are_accepted_and_larger_answer_413(apns: APNsWorld) -> None:
    token = apns.register()
    fits = json.dumps({"mdm": "m" * (4096 - 11)}).encode()
    assert len(fits) == 4096
    with apns.client() as provider:
        assert provider.push(token, content=fits).status_code == 200
        too_large = provider.push(token, content=fits[:-2] + b'x"}')
        assert too_large.status_code == 413 and reason(too_large) == "PayloadTooLarge"
        # Far larger than any payload: refused without being kept, and the connection is still usable.
        huge = provider.push(token, content=b"{" + b" " * (3 * 1024 * 1024) + b"}")
        assert huge.status_code == 413 and reason(huge) == "PayloadTooLarge"
        assert provider.push(token).status_code == 200


def test_another_method_answers_405_and_another_path_404(apns: APNsWorld) -> None:
    token = apns.register()
    with apns.client() as provider:
        for method in ("GET", "PUT", "DELETE"):
            response = provider.http.request(method, f"/3/device/{token}")
            assert response.status_code == 405 and reason(response) == "MethodNotAllowed", method
        for path in ("/", "/3/devices/" + token, "/2/device/" + token, "/portal/clock"):
            response = provider.http.post(path, content=b'{"mdm":"x"}')
            assert response.status_code == 404 and reason(response) == "BadPath", path
        missing = provider.http.post("/3/device/", content=b'{"mdm":"x"}')
    assert missing.status_code == 400 and reason(missing) == "MissingDeviceToken"


def test_a_deleted_token_answers_410_unregistered_with_the_time_it_was_deleted(apns: APNsWorld) -> None:
    token = apns.register()
    deleted = apns.sim.portal.delete(f"/apns/tokens/{token}")
    assert deleted.status_code == 200
    with apns.client() as provider:
        response = provider.push(token, apns_expiration="4102444800")
    assert response.status_code == 410
    body = json.loads(response.content)
    assert body == {"reason": "Unregistered", "timestamp": deleted.json()["timestamp"]}
    now_ms = apns.sim.state.clock.now().timestamp() * 1000
    assert now_ms - 60_000 < body["timestamp"] <= now_ms
    assert apns.stats(token)["received"] == 0


def test_without_a_client_certificate_every_push_answers_403_missing_provider_token(apns: APNsWorld) -> None:
    token = apns.register()
    with apns.anonymous_client() as provider:
        response = provider.push(token)
    assert response.status_code == 403 and reason(response) == "MissingProviderToken"


@pytest.mark.parametrize("uid", ["com.example.app", "", "com.apple.mdm.External.x"])
def test_a_trusted_certificate_that_names_no_mdm_topic_answers_403_bad_certificate(apns: APNsWorld, uid: str) -> None:
    token = apns.register()
    with apns.client(apns.ca.issue(uid=uid)) as provider:
        response = provider.push(token)
    assert response.status_code == 403 and reason(response) == "BadCertificate"


def test_an_rsa_2048_push_certificate_as_apple_issues_them_works(apns: APNsWorld) -> None:
    push = apns.ca.issue(rsa_key=True)
    token = apns.register(push.topic)
    with apns.client(push) as provider:
        assert provider.push(token, apns_topic=push.topic).status_code == 200


def test_a_renewed_certificate_keeps_the_topic_and_its_tokens(apns: APNsWorld) -> None:
    token = apns.register()
    now = apns.sim.state.clock.now()
    renewed = apns.ca.issue(apns.push.topic, not_before=now - timedelta(hours=1))
    with apns.client(renewed) as provider:
        assert provider.push(token).status_code == 200


def test_many_pushes_share_one_connection_concurrently(apns: APNsWorld) -> None:
    tokens = [apns.register() for _ in range(40)]
    context = client_context(apns.apns.ca_path, apns.push, apns.files)

    async def push_all() -> list[int]:
        async with httpx.AsyncClient(base_url=apns.apns.url, verify=context, http2=True, timeout=30) as provider:
            headers = {"apns-expiration": "4102444800"}
            answers = await asyncio.gather(
                *(provider.post(f"/3/device/{token}", content=b'{"mdm":"x"}', headers=headers) for token in tokens)
            )
            assert {answer.http_version for answer in answers} == {"HTTP/2"}
            return [answer.status_code for answer in answers]

    assert asyncio.run(push_all()) == [200] * 40
    assert all(apns.next(token).json() == {"mdm": "x"} for token in tokens)
