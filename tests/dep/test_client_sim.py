"""The DEP client against ``pippin sim``'s Apple over real HTTP: sessions, paging, cursors, faults, auth failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from pippin.dep.client import DEPClient, OAuthCredentials
from pippin.dep.errors import (
    CursorExhausted,
    CursorExpired,
    CursorInvalid,
    DEPRequestRejected,
    TermsNotSigned,
    TokenExpired,
    TokenRejected,
)
from pippin.dep.wire import Profile
from tests.sim.portal_client import assign, create_devices, create_server, default_certificate_pem, rsa_key
from tests.simulator import RunningSimulator


class RecordingTransport(httpx.BaseTransport):
    """A real HTTP transport that remembers each request's method, path and session header."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent: list[tuple[str, str, str | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.method, request.url.path, request.headers.get("X-ADM-Auth-Session")))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.sent]


def _download_credentials(sim: RunningSimulator, server_uuid: str) -> OAuthCredentials:
    response = sim.portal.get(f"/portal/mdm-servers/{server_uuid}/token")
    assert response.status_code == 200, response.text
    certificate = x509.load_pem_x509_certificate(default_certificate_pem().encode())
    plaintext = pkcs7.pkcs7_decrypt_smime(response.content, certificate, rsa_key(), [])
    message = plaintext.split(b"-----BEGIN MESSAGE-----")[1].split(b"-----END MESSAGE-----")[0]
    return OAuthCredentials.from_token_json(json.loads(message))


@pytest.fixture
def apple(sim: RunningSimulator) -> RunningSimulator:
    if sim.portal.get("/session").status_code == 404:
        pytest.skip("the simulator's DEP API (src/pippin/sim/dep_api.py) is not in this tree yet")
    return sim


@pytest.fixture
def server_uuid(apple: RunningSimulator) -> str:
    return create_server(apple.portal)


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(
    apple: RunningSimulator, server_uuid: str, transport: RecordingTransport, sleeps: list[float]
) -> Iterator[DEPClient]:
    credentials = _download_credentials(apple, server_uuid)
    with DEPClient(
        base_url=apple.base_url, credentials=credentials, transport=transport, sleep=sleeps.append, max_retries=10
    ) as client:
        yield client


def _advance(sim: RunningSimulator, seconds: float) -> None:
    response = sim.portal.post("/portal/clock", json={"advance_seconds": seconds})
    assert response.status_code == 200, response.text


def _fetch_all(client: DEPClient, *, limit: int) -> tuple[list[str], str]:
    serials: list[str] = []
    cursor: str | None = None
    for _ in range(1000):
        page = client.fetch_devices(cursor=cursor, limit=limit)
        serials += [device.serial_number for device in page.devices]
        cursor = page.cursor
        if not page.more_to_follow:
            return serials, cursor
    raise AssertionError("the fetch never finished")


def test_account_names_the_server_and_advertises_limits(client: DEPClient, server_uuid: str) -> None:
    account = client.account()
    assert account.server_uuid == server_uuid
    limit = account.limit_for("/server/devices")
    assert limit is None or 1 <= limit <= 5000


def test_one_session_is_reused_then_renewed_after_it_expires(
    apple: RunningSimulator, client: DEPClient, transport: RecordingTransport
) -> None:
    for _ in range(3):
        client.account()
    assert transport.paths().count("/session") == 1
    _advance(apple, 3600)
    client.account()
    assert transport.paths().count("/session") == 2


def test_a_rotated_session_is_used_for_the_next_call(
    apple: RunningSimulator, client: DEPClient, transport: RecordingTransport
) -> None:
    client.account()
    first = transport.sent[-1][2]
    _advance(apple, 200)  # past half the simulator's 5-minute session life: it rotates
    client.account()
    client.account()
    assert transport.paths().count("/session") == 1
    assert transport.sent[-1][2] != first


def test_fetch_pages_then_hands_over_to_sync(apple: RunningSimulator, client: DEPClient, server_uuid: str) -> None:
    serials = create_devices(apple.portal, 25)
    assign(apple.portal, server_uuid, serials)
    fetched, cursor = _fetch_all(client, limit=10)
    assert sorted(fetched) == sorted(serials)

    with pytest.raises(CursorExhausted):
        client.fetch_devices(cursor=cursor)

    quiet = client.sync_devices(cursor=cursor)
    assert quiet.devices == [] and quiet.more_to_follow is False and quiet.cursor

    later = create_devices(apple.portal, 3)
    assign(apple.portal, server_uuid, later)
    changes = client.sync_devices(cursor=quiet.cursor, limit=1000)
    assert {(d.serial_number, d.op_type) for d in changes.devices} == {(s, "added") for s in later}
    assert all(d.record["serial_number"] == d.serial_number for d in changes.devices)


def test_cursor_errors_from_apple(apple: RunningSimulator, client: DEPClient, server_uuid: str) -> None:
    assign(apple.portal, server_uuid, create_devices(apple.portal, 2))
    _, cursor = _fetch_all(client, limit=100)
    with pytest.raises(CursorInvalid):
        client.sync_devices(cursor="bm90IGEgY3Vyc29y")
    _advance(apple, 8 * 24 * 3600)
    with pytest.raises(CursorExpired):
        client.sync_devices(cursor=cursor)


def test_profiles_define_read_assign_and_remove(apple: RunningSimulator, client: DEPClient, server_uuid: str) -> None:
    serials = create_devices(apple.portal, 2)
    assign(apple.portal, server_uuid, serials)
    profile = Profile(profile_name="Corporate", url="https://mdm.example.com/enroll", is_supervised=True,
                      is_mdm_removable=False, skip_setup_items=["AppleID"])  # fmt: skip
    defined = client.define_profile(profile)
    read = client.get_profile(defined.profile_uuid)
    assert read.is_mdm_removable is False and read.skip_setup_items == ["AppleID"]
    assigned = client.assign_profile(profile_uuid=defined.profile_uuid, serials=[*serials, "NOTOURS0001"])
    assert assigned.devices[serials[0]] == "SUCCESS"
    assert assigned.devices["NOTOURS0001"] == "NOT_ACCESSIBLE"
    details = client.device_details(serials)
    detail = details[serials[0]].device
    assert detail is not None and detail.profile_uuid == defined.profile_uuid
    assert client.remove_profile([serials[0]]) == {serials[0]: "SUCCESS"}


def test_replacement_details_of_a_replaced_device(apple: RunningSimulator, client: DEPClient, server_uuid: str) -> None:
    original, replacement = create_devices(apple.portal, 2)
    assign(apple.portal, server_uuid, [original, replacement])
    marked = apple.portal.post(
        f"/portal/devices/{replacement}/replacement",
        json={"original_serial_number": original, "replacement_date": "2026-05-06"},
    )
    assert marked.status_code == 201, marked.text
    details = client.replacement_details(replacement)
    assert (details.serial_number, details.original_device_serial_number) == (replacement, original)
    assert details.replacement_date == date(2026, 5, 6)
    detail = client.device_details([replacement])[replacement].device
    assert detail is not None and detail.is_replacement_device is True
    with pytest.raises(DEPRequestRejected):
        client.replacement_details(original)


def test_client_completes_through_injected_faults(
    apple: RunningSimulator, client: DEPClient, server_uuid: str, sleeps: list[float]
) -> None:
    serials = create_devices(apple.portal, 40)
    assign(apple.portal, server_uuid, serials)
    faults: dict[str, Any] = {
        "seed": 11,
        "retry_after_seconds": 2,
        "rates": {
            "all": {
                "internal_server_error": 0.15,
                "service_unavailable": 0.1,
                "too_many_requests": 0.1,
                "dropped_connection": 0.1,
            }
        },
    }
    response = apple.portal.put("/portal/faults", json=faults)
    assert response.status_code == 200, response.text
    fetched, cursor = _fetch_all(client, limit=5)
    assert sorted(set(fetched)) == sorted(serials)
    client.sync_devices(cursor=cursor)
    assert len(client.device_details(serials)) == 40
    assert sleeps, "no fault was injected, so the test proved nothing"
    assert 2.0 in sleeps  # the simulator's Retry-After was honoured


def test_unsigned_terms_stop_the_client_until_accepted(
    apple: RunningSimulator, client: DEPClient, server_uuid: str
) -> None:
    client.account()
    assert apple.portal.post("/portal/terms").status_code == 200
    with pytest.raises(TermsNotSigned):
        client.account()
    assert apple.portal.post("/portal/terms/accept").status_code == 200
    with pytest.raises(TermsNotSigned):  # this client stays stopped; a new one (after the admin acted) works
        client.account()
    credentials = _download_credentials(apple, server_uuid)
    with DEPClient(base_url=apple.base_url, credentials=credentials) as fresh:
        assert fresh.account().server_uuid == server_uuid


def test_a_replaced_token_is_rejected(apple: RunningSimulator, client: DEPClient, server_uuid: str) -> None:
    client.account()
    _download_credentials(apple, server_uuid)  # a newer download revokes the token the client holds
    with pytest.raises(TokenRejected) as caught:
        client.account()
    assert caught.value.token_status == "token_rejected"


def test_a_token_past_its_year_is_expired_at_apple(apple: RunningSimulator, client: DEPClient) -> None:
    client.account()
    _advance(apple, 367 * 24 * 3600)
    with pytest.raises(TokenExpired):
        client.account()
