"""The DEP client's protocol, case by case, against an in-process double of Apple (httpx.MockTransport)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oauthlib.common import Request
from oauthlib.oauth1.rfc5849 import signature

from pippin import __version__
from pippin.dep.client import DEPClient, OAuthCredentials
from pippin.dep.errors import (
    AccessDenied,
    CursorExhausted,
    CursorExpired,
    CursorInvalid,
    CursorRequired,
    DEPError,
    DEPRequestRejected,
    DEPResponseInvalid,
    DEPUnavailable,
    TermsNotSigned,
    TokenExpired,
    TokenRejected,
)
from pippin.dep.wire import Profile
from pippin.logs import JSONFormatter

BASE = "https://apple.test"
CREDENTIALS = OAuthCredentials(
    consumer_key="CK_consumerkey",
    consumer_secret="CS_consumersecret",
    access_token="AT_accesstoken",
    access_secret="AS_accesssecret",
)
SECRETS = ("CS_consumersecret", "AS_accesssecret", "AT_accesstoken", "SESSION-")
PAGE = {"devices": [], "cursor": "CURSOR1", "more_to_follow": False, "fetched_until": "2024-01-01T00:00:00Z"}
ACCOUNT = {"server_uuid": "ABCDEF0123456789ABCDEF0123456789", "server_name": "Pippin", "org_name": "Acme"}
UUID = "C1F123098EB5074580041E69883004C3"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeApple:
    """Answers /session with a fresh token and every other path from a queue of replies (then a default)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.queues: dict[str, list[Reply]] = {}
        self.defaults: dict[str, Reply] = {"/account": httpx.Response(200, json=ACCOUNT)}
        self.sessions_issued = 0
        self.lock = threading.Lock()

    def queue(self, path: str, *replies: Reply) -> None:
        self.queues.setdefault(path, []).extend(replies)

    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            path = request.url.path
            queue = self.queues.get(path)
            reply = queue.pop(0) if queue else self.defaults.get(path)
            if reply is None and path == "/session":
                self.sessions_issued += 1
                reply = httpx.Response(200, json={"auth_session_token": f"SESSION-{self.sessions_issued}"})
        if reply is None:
            return httpx.Response(404, text="NOT_FOUND")
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply


@pytest.fixture
def apple() -> FakeApple:
    return FakeApple()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(apple: FakeApple, sleeps: list[float]) -> DEPClient:
    return DEPClient(base_url=BASE, credentials=CREDENTIALS, transport=httpx.MockTransport(apple), sleep=sleeps.append)


# --- Headers and OAuth ----------------------------------------------------------------------------------------


def test_every_call_carries_the_header_set_and_only_api_calls_carry_the_session(
    client: DEPClient, apple: FakeApple
) -> None:
    client.account()
    session_request, account_request = apple.requests
    for request in (session_request, account_request):
        assert request.headers["User-Agent"] == f"pippin/{__version__}"
        assert request.headers["X-Server-Protocol-Version"] == "10"
        assert request.headers["Content-Type"] == "application/json;charset=UTF8"
        assert request.headers["Accept"] == "application/json"
    assert "X-ADM-Auth-Session" not in session_request.headers
    assert account_request.headers["X-ADM-Auth-Session"] == "SESSION-1"
    assert "Authorization" not in account_request.headers


def test_session_request_is_oauth_signed_verifiably_with_realm_and_fresh_nonce(
    client: DEPClient, apple: FakeApple
) -> None:
    client.account()
    apple.queue("/account", httpx.Response(401, text="UNAUTHORIZED"))
    client.account()  # forces a second /session
    sessions = [request for request in apple.requests if request.url.path == "/session"]
    assert len(sessions) == 2
    nonces = set()
    for request in sessions:
        headers = {"Authorization": request.headers["Authorization"]}
        assert headers["Authorization"].startswith('OAuth realm="ADM"')
        oauth = dict(signature.collect_parameters(headers=headers, exclude_oauth_signature=False))
        assert oauth["oauth_signature_method"] == "HMAC-SHA1"
        assert oauth["oauth_consumer_key"] == "CK_consumerkey"
        assert oauth["oauth_token"] == "AT_accesstoken"
        assert oauth["oauth_version"] == "1.0"
        nonces.add(oauth["oauth_nonce"])
        server_view = Request(str(request.url), http_method="GET", headers=headers)
        server_view.params = signature.collect_parameters(headers=headers)
        server_view.signature = oauth["oauth_signature"]
        assert signature.verify_hmac_sha1(server_view, "CS_consumersecret", "AS_accesssecret")
        assert not signature.verify_hmac_sha1(server_view, "CS_consumersecret", "AS_wrong")
    assert len(nonces) == 2


# --- Session lifecycle ----------------------------------------------------------------------------------------


def test_one_session_serves_many_calls(client: DEPClient, apple: FakeApple) -> None:
    for _ in range(5):
        client.account()
    assert apple.paths().count("/session") == 1


def test_a_rotated_session_header_replaces_the_stored_session(client: DEPClient, apple: FakeApple) -> None:
    apple.queue("/account", httpx.Response(200, json=ACCOUNT, headers={"X-ADM-Auth-Session": "ROTATED"}))
    client.account()
    client.account()
    assert apple.requests[-1].headers["X-ADM-Auth-Session"] == "ROTATED"
    assert apple.paths().count("/session") == 1


@pytest.mark.parametrize(("status", "body"), [(401, "UNAUTHORIZED"), (403, "FORBIDDEN"), (403, '"FORBIDDEN"')])
def test_a_stale_session_is_renewed_once_and_the_call_retried(
    client: DEPClient, apple: FakeApple, status: int, body: str
) -> None:
    apple.queue("/account", httpx.Response(status, text=body))
    assert client.account().server_name == "Pippin"
    assert apple.paths() == ["/session", "/account", "/session", "/account"]
    assert apple.requests[-1].headers["X-ADM-Auth-Session"] == "SESSION-2"


def test_a_second_stale_answer_is_reported_not_looped(client: DEPClient, apple: FakeApple) -> None:
    apple.queue("/account", httpx.Response(401, text="UNAUTHORIZED"), httpx.Response(403, text="FORBIDDEN"))
    with pytest.raises(DEPUnavailable) as caught:
        client.account()
    assert apple.paths() == ["/session", "/account", "/session", "/account"]
    assert caught.value.hint
    assert client.account().server_name == "Pippin"  # not fatal: the next call works


def test_parallel_calls_share_one_session(apple: FakeApple) -> None:
    client = DEPClient(base_url=BASE, credentials=CREDENTIALS, transport=httpx.MockTransport(apple))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                client.account()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert apple.paths().count("/session") == 1
    assert apple.paths().count("/account") == 40


# --- Token-level failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["T_C_NOT_SIGNED", '"T_C_NOT_SIGNED"', '{"code": "T_C_NOT_SIGNED"}'])
@pytest.mark.parametrize("path", ["/session", "/account"])
def test_terms_not_signed_in_every_body_form_stops_the_client(
    client: DEPClient, apple: FakeApple, body: str, path: str
) -> None:
    apple.queue(path, httpx.Response(403, text=body))
    with pytest.raises(TermsNotSigned) as caught:
        client.account()
    assert caught.value.token_status == "terms_not_signed"
    assert "business.apple.com" in (caught.value.hint or "")
    sent = len(apple.requests)
    with pytest.raises(TermsNotSigned):
        client.fetch_devices()
    assert len(apple.requests) == sent  # refused without sending anything


@pytest.mark.parametrize("path", ["/session", "/account"])
def test_access_denied_is_not_retried(client: DEPClient, apple: FakeApple, sleeps: list[float], path: str) -> None:
    apple.queue(path, httpx.Response(403, text="ACCESS_DENIED"))
    with pytest.raises(AccessDenied):
        client.account()
    assert apple.paths().count(path) == 1
    assert sleeps == []
    with pytest.raises(AccessDenied):
        client.account()
    assert apple.paths().count(path) == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("oauth_problem=token_rejected", TokenRejected),
        ('"signature_invalid"', TokenRejected),
        ("UNAUTHORIZED", TokenRejected),
        ("oauth_problem=token_expired", TokenExpired),
    ],
)
def test_a_401_on_session_is_a_token_failure_without_retry(
    client: DEPClient, apple: FakeApple, body: str, error: type[Exception]
) -> None:
    apple.queue("/session", httpx.Response(401, text=body))
    with pytest.raises(error):
        client.account()
    assert apple.paths() == ["/session"]


def test_an_expired_token_is_refused_locally(apple: FakeApple) -> None:
    expired = OAuthCredentials(
        consumer_key="CK_1", consumer_secret="CS_1", access_token="AT_1", access_secret="AS_1",
        expires_at=datetime(2024, 1, 17, 11, 2, 21, tzinfo=UTC),
    )  # fmt: skip
    client = DEPClient(base_url=BASE, credentials=expired, transport=httpx.MockTransport(apple))
    with pytest.raises(TokenExpired) as caught:
        client.account()
    assert "2024-01-17" in caught.value.message
    assert caught.value.token_status == "expired"
    assert apple.requests == []


def test_a_token_expiring_mid_life_is_refused_from_then_on(apple: FakeApple) -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    clock = [expires - timedelta(seconds=1)]
    credentials = OAuthCredentials(
        consumer_key="CK_1", consumer_secret="CS_1", access_token="AT_1", access_secret="AS_1", expires_at=expires
    )
    client = DEPClient(
        base_url=BASE, credentials=credentials, transport=httpx.MockTransport(apple), now=lambda: clock[0]
    )
    client.account()
    clock[0] = expires
    with pytest.raises(TokenExpired):
        client.account()
    assert apple.paths() == ["/session", "/account"]


# --- Retries ----------------------------------------------------------------------------------------------------


def test_5xx_and_429_are_retried_with_bounded_full_jitter(
    client: DEPClient, apple: FakeApple, sleeps: list[float]
) -> None:
    apple.queue(
        "/account",
        httpx.Response(503),
        httpx.Response(500, text="INTERNAL"),
        httpx.Response(429, text="TOO_MANY_REQUESTS"),
        httpx.Response(502),
    )
    assert client.account().server_uuid == ACCOUNT["server_uuid"]
    assert len(sleeps) == 4
    for attempt, wait in enumerate(sleeps):
        assert 0 <= wait <= min(30.0, 0.5 * 2**attempt)


def test_backoff_never_exceeds_the_cap(apple: FakeApple, sleeps: list[float]) -> None:
    client = DEPClient(
        base_url=BASE,
        credentials=CREDENTIALS,
        max_retries=12,
        transport=httpx.MockTransport(apple),
        sleep=sleeps.append,
    )
    apple.queue("/account", *[httpx.Response(503) for _ in range(12)])
    client.account()
    assert len(sleeps) == 12
    assert max(sleeps) <= 30.0


def test_retry_after_seconds_is_honoured(client: DEPClient, apple: FakeApple, sleeps: list[float]) -> None:
    apple.queue("/session", httpx.Response(429, text="TOO_MANY_REQUESTS", headers={"Retry-After": "7"}))
    client.account()
    assert sleeps == [7.0]


def test_retry_after_http_date_is_honoured(apple: FakeApple, sleeps: list[float]) -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    client = DEPClient(
        base_url=BASE, credentials=CREDENTIALS, transport=httpx.MockTransport(apple), sleep=sleeps.append,
        now=lambda: now,
    )  # fmt: skip
    later = format_datetime(now + timedelta(seconds=42), usegmt=True)
    apple.queue("/account", httpx.Response(503, headers={"Retry-After": later}))
    client.account()
    assert sleeps == [42.0]


def test_an_unreasonable_retry_after_gives_up_saying_when(
    client: DEPClient, apple: FakeApple, sleeps: list[float]
) -> None:
    apple.queue("/account", httpx.Response(429, headers={"Retry-After": "7200"}))
    with pytest.raises(DEPUnavailable) as caught:
        client.account()
    assert caught.value.retry_after == 7200
    assert "120 minutes" in caught.value.message
    assert "Try again after" in (caught.value.hint or "")
    assert sleeps == []


@pytest.mark.parametrize("value", ["soon", "-5", "", "Mon, 99 Foo 2026"])
def test_a_garbled_retry_after_falls_back_to_backoff(
    client: DEPClient, apple: FakeApple, sleeps: list[float], value: str
) -> None:
    apple.queue("/account", httpx.Response(503, headers={"Retry-After": value}))
    client.account()
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.5


def test_retries_run_out_into_dep_unavailable_with_a_hint(
    client: DEPClient, apple: FakeApple, sleeps: list[float]
) -> None:
    apple.defaults["/account"] = httpx.Response(503, text="SERVICE_UNAVAILABLE")
    with pytest.raises(DEPUnavailable) as caught:
        client.account()
    assert apple.paths().count("/account") == 6
    assert len(sleeps) == 5
    assert caught.value.status == 503
    assert "6 attempts" in caught.value.message
    assert caught.value.hint and "network" in caught.value.hint


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadError("connection reset by peer"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
    ],
)
def test_dropped_connections_are_retried(
    client: DEPClient, apple: FakeApple, sleeps: list[float], failure: Exception
) -> None:
    apple.defaults["/server/devices"] = httpx.Response(200, json=PAGE)
    apple.queue("/session", failure)
    apple.queue("/server/devices", failure, failure)
    assert client.fetch_devices().cursor == "CURSOR1"
    assert len(sleeps) == 3


def test_an_unreadable_200_is_retried(client: DEPClient, apple: FakeApple, sleeps: list[float]) -> None:
    apple.queue("/account", httpx.Response(200, text='{"server_uuid": "AB'))
    assert client.account().server_name == "Pippin"
    assert len(sleeps) == 1


def test_unreachable_apple_is_dep_unavailable(apple: FakeApple, sleeps: list[float]) -> None:
    apple.defaults["/session"] = httpx.ConnectError("refused")
    client = DEPClient(
        base_url=BASE, credentials=CREDENTIALS, max_retries=2, transport=httpx.MockTransport(apple), sleep=sleeps.append
    )
    with pytest.raises(DEPUnavailable, match="ConnectError"):
        client.account()
    assert len(sleeps) == 2


# --- Apple's other codes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "error"),
    [
        ("EXHAUSTED_CURSOR", "EXHAUSTED_CURSOR", CursorExhausted),
        ('"EXPIRED_CURSOR"', "EXPIRED_CURSOR", CursorExpired),
        ('{"code": "INVALID_CURSOR"}', "INVALID_CURSOR", CursorInvalid),
        ("CURSOR_REQUIRED", "CURSOR_REQUIRED", CursorRequired),
        ("MALFORMED_REQUEST_BODY", "MALFORMED_REQUEST_BODY", DEPRequestRejected),
    ],
)
def test_cursor_codes_become_cursor_errors_and_the_client_stays_usable(
    client: DEPClient, apple: FakeApple, body: str, code: str, error: type[DEPError]
) -> None:
    apple.queue("/devices/sync", httpx.Response(400, text=body))
    with pytest.raises(error) as caught:
        client.sync_devices(cursor="CURSOR1")
    assert caught.value.apple_code == code
    assert client.account().server_name == "Pippin"


def test_other_4xx_codes_are_request_rejections_with_apple_code(client: DEPClient, apple: FakeApple) -> None:
    apple.queue("/profile", httpx.Response(400, text="CONFIG_NAME_INVALID"))
    with pytest.raises(DEPRequestRejected) as caught:
        client.define_profile(Profile(profile_name="x" * 200, url="https://mdm.example.com/enroll"))
    assert caught.value.apple_code == "CONFIG_NAME_INVALID"
    assert caught.value.status == 400


def test_a_200_of_the_wrong_shape_is_response_invalid(client: DEPClient, apple: FakeApple) -> None:
    apple.queue("/server/devices", httpx.Response(200, json={"devices": "lots", "cursor": "c"}))
    with pytest.raises(DEPResponseInvalid):
        client.fetch_devices()


def test_an_oversized_answer_is_refused(client: DEPClient, apple: FakeApple, sleeps: list[float]) -> None:
    apple.queue("/server/devices", httpx.Response(200, content=b" " * (17 * 1024 * 1024)))
    with pytest.raises(DEPResponseInvalid, match="larger than"):
        client.fetch_devices()
    assert sleeps == []


# --- Local refusals ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1, 1001, True])
def test_page_limits_outside_1_to_1000_are_refused_locally(client: DEPClient, apple: FakeApple, limit: int) -> None:
    with pytest.raises(DEPRequestRejected):
        client.fetch_devices(limit=limit)
    with pytest.raises(DEPRequestRejected):
        client.sync_devices(cursor="C", limit=limit)
    assert apple.requests == []


@pytest.mark.parametrize(
    "serials",
    [[], [f"S{i:05d}" for i in range(1001)], ["OK1", ""], ["has space"], ["x" * 65], ["\x00"], "SERIAL", [["S1"]], [7]],
)
def test_bad_serial_lists_are_refused_locally(client: DEPClient, apple: FakeApple, serials: list[str]) -> None:
    with pytest.raises(DEPRequestRejected):
        client.assign_profile(profile_uuid=UUID, serials=serials)
    with pytest.raises(DEPRequestRejected):
        client.disown_devices(serials)
    assert apple.requests == []


@pytest.mark.parametrize("profile_uuid", ["", "not-a-uuid", "C1F123098EB5074580041E69883004C", "G" * 32])
def test_bad_profile_uuids_are_refused_locally(client: DEPClient, apple: FakeApple, profile_uuid: str) -> None:
    with pytest.raises(DEPRequestRejected):
        client.get_profile(profile_uuid)
    assert apple.requests == []


def test_cursor_checks_before_sending(client: DEPClient, apple: FakeApple) -> None:
    with pytest.raises(CursorRequired):
        client.sync_devices(cursor="")
    with pytest.raises(CursorInvalid):
        client.sync_devices(cursor="c" * 1001)
    assert apple.requests == []


def test_an_incomplete_token_is_refused() -> None:
    with pytest.raises(DEPRequestRejected, match="access_secret"):
        OAuthCredentials(consumer_key="CK", consumer_secret="CS", access_token="AT", access_secret="")


# --- Endpoint shapes ---------------------------------------------------------------------------------------------


def _body(request: httpx.Request) -> object:
    return json.loads(request.content)


def test_each_endpoint_sends_apples_method_path_and_body(client: DEPClient, apple: FakeApple) -> None:
    apple.defaults.update(
        {
            "/server/devices": httpx.Response(200, json=PAGE),
            "/devices/sync": httpx.Response(200, json=PAGE),
            "/devices": httpx.Response(200, json={"devices": {"S1": {"response_status": "NOT_ACCESSIBLE"}}}),
            "/profile": httpx.Response(200, json={"profile_uuid": UUID, "devices": {}}),
            "/profile/devices": httpx.Response(200, json={"profile_uuid": UUID, "devices": {"S1": "SUCCESS"}}),
            "/devices/disown": httpx.Response(200, json={"devices": {"S1": "SUCCESS"}}),
            "/device/activationlock": httpx.Response(200, json={"serial_number": "S1", "response_status": "SUCCESS"}),
            "/device/replacementDetails": httpx.Response(200, json={"serial_number": "S1"}),
        }
    )
    client.fetch_devices()
    client.fetch_devices(cursor="C0", limit=200)
    client.sync_devices(cursor="C1")
    assert client.device_details(["S1", "S1"])["S1"].device is None
    assert client.define_profile(Profile(profile_name="P", url="https://m/e", is_mdm_removable=False)).profile_uuid
    apple.queue("/profile", httpx.Response(200, json={"profile_name": "P", "url": "https://m/e", "profile_uuid": UUID}))
    assert client.get_profile("c1f12309-8eb5-0745-8004-1e69883004c3").profile_uuid == UUID
    assert client.assign_profile(profile_uuid=UUID, serials=["S1"]).devices == {"S1": "SUCCESS"}
    apple.queue("/profile/devices", httpx.Response(200, json={"devices": {"S1": "SUCCESS"}}))
    assert client.remove_profile(["S1"]) == {"S1": "SUCCESS"}
    assert client.disown_devices(["S1"]) == {"S1": "SUCCESS"}
    assert client.activation_lock("S1", escrow_key="ab" * 32).response_status == "SUCCESS"
    assert client.replacement_details("S1").serial_number == "S1"

    sent = [(r.method, r.url.path, r.url.query.decode(), _body(r) if r.content else None) for r in apple.requests[1:]]
    assert sent == [
        ("POST", "/server/devices", "", {}),
        ("POST", "/server/devices", "", {"cursor": "C0", "limit": 200}),
        ("POST", "/devices/sync", "", {"cursor": "C1"}),
        ("POST", "/devices", "", {"devices": ["S1"]}),
        ("POST", "/profile", "", Profile(profile_name="P", url="https://m/e", is_mdm_removable=False).to_wire()),
        ("GET", "/profile", f"profile_uuid={UUID}", None),
        ("POST", "/profile/devices", "", {"profile_uuid": UUID, "devices": ["S1"]}),
        ("DELETE", "/profile/devices", "", {"devices": ["S1"]}),
        ("POST", "/devices/disown", "", {"devices": ["S1"]}),
        ("POST", "/device/activationlock", "", {"device": "S1", "escrow_key": "ab" * 32}),
        ("GET", "/device/replacementDetails", "device=S1", None),
    ]
    define_body = _body(apple.requests[5])
    assert isinstance(define_body, dict) and define_body["is_mdm_removable"] is False


def test_a_base_url_with_a_path_prefix_is_kept(apple: FakeApple) -> None:
    client = DEPClient(base_url=f"{BASE}/apple/", credentials=CREDENTIALS, transport=httpx.MockTransport(apple))
    with pytest.raises(DEPRequestRejected):  # the double answers 404 NOT_FOUND for unknown paths
        client.account()
    assert apple.paths() == ["/apple/session"]


# --- Secrecy -----------------------------------------------------------------------------------------------------


def test_repr_and_str_hide_every_secret(client: DEPClient) -> None:
    for text in (repr(client), str(client), repr(CREDENTIALS), str(CREDENTIALS)):
        for secret in (*SECRETS, "CK_consumerkey"):
            assert secret not in text


def test_one_debug_line_per_request_without_secrets(
    client: DEPClient, apple: FakeApple, caplog: pytest.LogCaptureFixture
) -> None:
    apple.queue("/account", httpx.Response(503), httpx.Response(401, text="UNAUTHORIZED"))
    with caplog.at_level(logging.DEBUG, logger="pippin.dep.client"):
        client.account()
    lines = [JSONFormatter().format(record) for record in caplog.records if record.name == "pippin.dep.client"]
    assert len(lines) == len(apple.requests) == 5
    first = json.loads(lines[0])
    assert first["method"] == "GET" and first["path"] == "/session" and first["status"] == 200
    assert "duration_ms" in first
    for line in lines:
        for secret in SECRETS:
            assert secret not in line


def test_errors_never_carry_secrets(client: DEPClient, apple: FakeApple) -> None:
    apple.queue("/session", httpx.Response(401, text="oauth_problem=token_rejected AS_accesssecret"))
    with pytest.raises(TokenRejected) as caught:
        client.account()
    for secret in SECRETS:
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value)


class _BreaksMidBody(httpx.SyncByteStream):
    """A body that stops halfway, as when Apple's connection drops while sending a page."""

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"devices": [], "cur'
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def test_a_body_cut_off_midway_is_retried(client: DEPClient, apple: FakeApple, sleeps: list[float]) -> None:
    apple.defaults["/server/devices"] = httpx.Response(200, json=PAGE)
    apple.queue("/server/devices", httpx.Response(200, stream=_BreaksMidBody()))
    assert client.fetch_devices().cursor == "CURSOR1"
    assert apple.paths().count("/server/devices") == 2
    assert len(sleeps) == 1


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=2048), status=st.sampled_from([400, 401, 403, 404, 405, 409]))
def test_any_error_body_yields_a_typed_error_with_a_short_code(body: bytes, status: int) -> None:
    apple = FakeApple()
    apple.defaults["/account"] = lambda _: httpx.Response(status, content=body)
    client = DEPClient(base_url=BASE, credentials=CREDENTIALS, transport=httpx.MockTransport(apple), sleep=no_sleep)
    with pytest.raises(DEPError) as caught:
        client.account()
    code = caught.value.apple_code
    assert code is None or (len(code) <= 64 and code.replace("_", "").replace(".", "").isalnum())
    assert caught.value.message and caught.value.hint


def no_sleep(_: float) -> None:
    return None


def test_credentials_from_the_token_json_carry_its_expiry() -> None:
    credentials = OAuthCredentials.from_token_json(
        {"consumer_key": "CK_1", "consumer_secret": "CS_1", "access_token": "AT_1", "access_secret": "AS_1",
         "access_token_expiry": "2026-01-17T11:02:21Z"}
    )  # fmt: skip
    assert credentials.expires_at == datetime(2026, 1, 17, 11, 2, 21, tzinfo=UTC)
    with pytest.raises(DEPRequestRejected, match="consumer_secret"):
        OAuthCredentials.from_token_json({"consumer_key": "CK_1", "access_token": "AT", "access_secret": "AS"})
    with pytest.raises(DEPRequestRejected, match="expiry"):
        OAuthCredentials.from_token_json(
            {"consumer_key": "C", "consumer_secret": "S", "access_token": "A", "access_secret": "B",
             "access_token_expiry": "next year"}
        )  # fmt: skip


@pytest.mark.parametrize("base_url", ["mdmenrollment.apple.com", "ftp://apple.test", ""])
def test_a_base_url_without_http_scheme_is_refused(base_url: str) -> None:
    with pytest.raises(DEPRequestRejected, match="base URL"):
        DEPClient(base_url=base_url, credentials=CREDENTIALS)
