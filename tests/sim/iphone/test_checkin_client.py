"""The device's check-in client: the messages iOS sends, each signed by its SCEP identity in Mdm-Signature."""

from __future__ import annotations

import base64
import plistlib
from typing import Any

import httpx
import pytest

from pippin.sim.iphone.checkin_client import MAX_ANSWER_BYTES, MAX_COMMANDS_PER_CONNECT, MDMClient
from pippin.sim.iphone.command_answers import CommandAnswers
from pippin.sim.iphone.command_reading import Aftermath
from pippin.sim.iphone.device_state import DeviceState
from pippin.sim.iphone.errors import ServerUnauthorized, SetupFailed
from pippin.sim.iphone.profiles import ProfileStore
from tests.sim.iphone.pki import facts, issue, new_ca, verify_cms
from tests.sim.iphone.profiles import TOPIC, enrollment_profile

MDM_PAYLOAD: dict[str, Any] = enrollment_profile()["PayloadContent"][0]


class Server:
    """Records what the device PUTs and answers from a script of responses."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.requests: list[httpx.Request] = []
        self.answers = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0) if self.answers else httpx.Response(200)


def _client(server: Server) -> tuple[MDMClient, Any]:
    identity = issue(new_ca("SCEP CA"), "MDM identity")
    http = httpx.Client(transport=httpx.MockTransport(server))
    return MDMClient(http, mdm_payload=MDM_PAYLOAD, identity=identity, facts=facts()), identity


def test_authenticate_is_signed_over_the_exact_body_by_the_scep_identity() -> None:
    server = Server()
    client, identity = _client(server)
    client.authenticate()
    (request,) = server.requests
    assert request.method == "PUT" and str(request.url) == "https://mdm.example.com/mdm/checkin"
    assert request.headers["content-type"] == "application/x-apple-aspen-mdm-checkin"
    verified = verify_cms(base64.b64decode(request.headers["mdm-signature"]), detached=request.content)
    assert verified.signer == identity.certificate and verified.digest == "sha256"
    message = plistlib.loads(request.content)
    assert message == {
        "MessageType": "Authenticate",
        "Topic": TOPIC,
        "UDID": "00008120-000A1C2E3E9B401E",
        "OSVersion": "18.1",
        "BuildVersion": "22B83",
        "ProductName": "iPhone15,2",
        "SerialNumber": "F2LXK0AAHG7F",
        "IMEI": "35 289611 025183 6",
        "MEID": "35289611025183",
    }


def test_a_signature_over_the_body_does_not_verify_for_another_body() -> None:
    server = Server()
    client, _ = _client(server)
    client.authenticate()
    (request,) = server.requests
    with pytest.raises(AssertionError):
        verify_cms(base64.b64decode(request.headers["mdm-signature"]), detached=request.content + b" ")


def test_token_update_carries_the_token_push_magic_unlock_token_and_awaiting_configuration() -> None:
    server = Server()
    client, _ = _client(server)
    client.token_update(token=b"\x01" * 32, push_magic="MAGIC", unlock_token=b"unlock", awaiting_configuration=True)
    message = plistlib.loads(server.requests[0].content)
    assert message["MessageType"] == "TokenUpdate" and message["Token"] == b"\x01" * 32
    assert message["PushMagic"] == "MAGIC" and message["UnlockToken"] == b"unlock"
    assert message["AwaitingConfiguration"] is True and message["Topic"] == TOPIC


def test_401_means_the_enrollment_is_gone() -> None:
    client, _ = _client(Server(httpx.Response(401)))
    with pytest.raises(ServerUnauthorized):
        client.authenticate()
    client, _ = _client(Server(httpx.Response(500)))
    with pytest.raises(SetupFailed, match="HTTP 500") as raised:
        client.authenticate()
    assert not isinstance(raised.value, ServerUnauthorized)


def test_connect_puts_idle_and_answers_an_unknown_command_until_the_server_has_none() -> None:
    command = plistlib.dumps({"CommandUUID": "C-1", "Command": {"RequestType": "DeviceInformation"}})
    server = Server(httpx.Response(200, content=command), httpx.Response(200))
    client, _ = _client(server)
    assert client.connect() == 1
    idle, report = (plistlib.loads(r.content) for r in server.requests)
    assert str(server.requests[0].url) == "https://mdm.example.com/mdm/connect"
    assert idle == {"Status": "Idle", "UDID": "00008120-000A1C2E3E9B401E"}
    assert report["Status"] == "Error" and report["CommandUUID"] == "C-1"
    assert report["ErrorChain"][0]["ErrorCode"] == 12021
    for request in server.requests:
        verify_cms(base64.b64decode(request.headers["mdm-signature"]), detached=request.content)


def test_check_out_names_the_topic_and_udid() -> None:
    server = Server()
    client, _ = _client(server)
    client.check_out()
    assert plistlib.loads(server.requests[0].content) == {
        "MessageType": "CheckOut",
        "Topic": TOPIC,
        "UDID": "00008120-000A1C2E3E9B401E",
    }


def _device_answers() -> CommandAnswers:
    state = DeviceState(serial_number="F2LXK0AAHG7F", facts=facts(), enrolled=True)
    return CommandAnswers(state, ProfileStore(), trust=[])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"this is not a plist", "not an XML plist"),
        (plistlib.dumps({"CommandUUID": "C-1", "Command": {}}, fmt=plistlib.FMT_BINARY), "not an XML plist"),
        (plistlib.dumps({"Command": {"RequestType": "DeviceLock"}}), "no CommandUUID"),
        (b"<" + b"x" * (MAX_ANSWER_BYTES + 1), "larger than a device reads"),
        (b"<plist><array>" * 50_000, "not an MDM command plist"),
    ],
    ids=["not a plist", "binary plist", "no CommandUUID", "huge", "deeply nested"],
)
def test_a_hostile_command_body_is_refused_and_ends_the_session_without_a_crash(body: bytes, reason: str) -> None:
    server = Server(httpx.Response(200, content=body))
    client, _ = _client(server)
    with pytest.raises(SetupFailed, match=reason) as raised:
        client.session(_device_answers().answer)
    assert raised.value.step == "connect" and len(server.requests) == 1, "nothing is answered to no command"


def test_a_malformed_command_gets_command_format_error_and_the_session_goes_on() -> None:
    malformed = plistlib.dumps({"CommandUUID": "C-1", "Command": {"RequestType": "DeviceInformation", "Queries": 3}})
    good = plistlib.dumps({"CommandUUID": "C-2", "Command": {"RequestType": "DeviceInformation", "Queries": ["UDID"]}})
    server = Server(httpx.Response(200, content=malformed), httpx.Response(200, content=good), httpx.Response(200))
    client, _ = _client(server)
    session = client.session(_device_answers().answer)
    assert (session.commands, session.put_off, session.aftermath) == (2, False, None)
    _, format_error, answered = (plistlib.loads(r.content) for r in server.requests)
    assert format_error == {"UDID": facts().udid, "CommandUUID": "C-1", "Status": "CommandFormatError"}
    assert answered["Status"] == "Acknowledged" and answered["QueryResponses"] == {"UDID": facts().udid}


def test_an_erase_ends_the_session_once_its_answer_is_sent() -> None:
    erase = plistlib.dumps({"CommandUUID": "C-1", "Command": {"RequestType": "EraseDevice"}})
    lock = plistlib.dumps({"CommandUUID": "C-2", "Command": {"RequestType": "DeviceLock"}})
    server = Server(httpx.Response(200, content=erase), httpx.Response(200, content=lock))
    client, _ = _client(server)
    session = client.session(_device_answers().answer)
    assert (session.commands, session.aftermath) == (1, Aftermath.erase)
    assert len(server.requests) == 2 and plistlib.loads(server.requests[1].content)["Status"] == "Acknowledged"


def test_a_server_that_never_stops_sending_is_cut_off_and_the_session_says_it_was() -> None:
    lock = plistlib.dumps({"CommandUUID": "C-1", "Command": {"RequestType": "DeviceLock"}})
    server = Server(*(httpx.Response(200, content=lock) for _ in range(MAX_COMMANDS_PER_CONNECT + 5)))
    client, _ = _client(server)
    session = client.session(_device_answers().answer)
    assert (session.commands, session.cut_short) == (MAX_COMMANDS_PER_CONNECT, True)
    assert len(server.requests) == MAX_COMMANDS_PER_CONNECT + 1
