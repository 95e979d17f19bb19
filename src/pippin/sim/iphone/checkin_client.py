"""The device's MDM client: check-in messages to the CheckInURL and connections to the ServerURL (reference §2, §3).

Every request carries ``Mdm-Signature``, a detached CMS signature over the exact body by the SCEP identity
(§4; the profile's ``SignMessage``). A connection is one session of §3: ``Idle``, then each command the server
hands out is answered (by the device's ``command_answers.py``; with no device behind the client, every command gets
the error iOS gives one it does not know) until the server answers with an empty body. A command after which the
device erases, restarts, shuts down or unenrolls ends the session once its answer is sent.
"""

from __future__ import annotations

import base64
import plistlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from pippin.sim.iphone.cms import sign_detached
from pippin.sim.iphone.command_reading import (
    Aftermath,
    Answer,
    CommandUnreadable,
    not_a_valid_request_type,
    read_envelope,
)
from pippin.sim.iphone.errors import ServerUnauthorized, SetupFailed
from pippin.sim.iphone.identity import DeviceFacts, DeviceIdentity

CHECKIN_TYPE = "application/x-apple-aspen-mdm-checkin"
COMMAND_TYPE = "application/x-apple-aspen-mdm"
USER_AGENT = "MDM/1.0"
MAX_COMMANDS_PER_CONNECT = 100
MAX_ANSWER_BYTES = 10 * 1024 * 1024
#: Answers one command body from the server; raises :class:`CommandUnreadable` for one that names no command.
Answerer = Callable[[bytes], Answer]


@dataclass(frozen=True)
class ConnectSession:
    """What one session did: the commands answered, whether the last was put off, what follows the last, and
    whether the device stopped at its bound with the server still sending (it connects again for the rest)."""

    commands: int
    put_off: bool = False
    aftermath: Aftermath | None = None
    cut_short: bool = False


def answer_unknown(body: bytes) -> Answer:
    """The answer of a device that runs no command: the unknown-command error for every one."""
    command_uuid, raw = read_envelope(body)
    request_type = raw.get("RequestType") if isinstance(raw, dict) else None
    failed = not_a_valid_request_type(request_type if isinstance(request_type, str) else "")
    chain = [entry.as_plist() for entry in failed.chain]
    return Answer({"CommandUUID": command_uuid, "Status": "Error", "ErrorChain": chain})


class MDMClient:
    """One enrolled device's MDM channel: its payload's URLs and topic, and the identity that signs for it."""

    def __init__(
        self, client: httpx.Client, *, mdm_payload: dict[str, Any], identity: DeviceIdentity, facts: DeviceFacts
    ) -> None:
        self._client = client
        self._identity = identity
        self._facts = facts
        self.topic: str = mdm_payload["Topic"]
        self.server_url: str = mdm_payload["ServerURL"]
        self.checkin_url: str = mdm_payload.get("CheckInURL") or self.server_url

    def authenticate(self) -> None:
        message: dict[str, Any] = {
            "MessageType": "Authenticate",
            "Topic": self.topic,
            "UDID": self._facts.udid,
            "OSVersion": self._facts.os_version,
            "BuildVersion": self._facts.build_version,
            "ProductName": self._facts.product,
            "SerialNumber": self._facts.serial_number,
        }
        if self._facts.imei:
            message["IMEI"] = self._facts.imei
        if self._facts.meid:
            message["MEID"] = self._facts.meid
        self.check_in("Authenticate", message)

    def token_update(
        self, *, token: bytes, push_magic: str, unlock_token: bytes | None, awaiting_configuration: bool
    ) -> None:
        message: dict[str, Any] = {
            "MessageType": "TokenUpdate",
            "Topic": self.topic,
            "UDID": self._facts.udid,
            "Token": token,
            "PushMagic": push_magic,
        }
        if unlock_token is not None:
            message["UnlockToken"] = unlock_token
        if awaiting_configuration:
            message["AwaitingConfiguration"] = True
        self.check_in("TokenUpdate", message)

    def check_out(self) -> None:
        self.check_in("CheckOut", {"MessageType": "CheckOut", "Topic": self.topic, "UDID": self._facts.udid})

    def check_in(self, step: str, message: dict[str, Any]) -> bytes:
        return self._put(self.checkin_url, step, plistlib.dumps(message, fmt=plistlib.FMT_XML), CHECKIN_TYPE)

    def connect(self, answers: Answerer = answer_unknown) -> int:
        """One session (see :meth:`session`); the commands the server sent."""
        return self.session(answers).commands

    def session(self, answers: Answerer = answer_unknown) -> ConnectSession:
        """Tell the server the device is idle and answer what it sends until it has nothing (reference section 3)."""
        report: dict[str, Any] = {"Status": "Idle", "UDID": self._facts.udid}
        put_off, aftermath = False, None
        seen = 0  # the commands answered before this request
        while True:
            body = self._put(self.server_url, "connect", plistlib.dumps(report, fmt=plistlib.FMT_XML), COMMAND_TYPE)
            if aftermath is not None:
                return ConnectSession(seen, put_off, aftermath)  # the device is busy erasing or restarting now
            if not body.strip():
                return ConnectSession(seen, put_off)
            if seen == MAX_COMMANDS_PER_CONNECT:
                # The command just fetched stays unanswered: the server hands it out again at the next connect.
                return ConnectSession(seen, put_off, cut_short=True)
            try:
                answer = answers(body)
            except CommandUnreadable as exc:
                raise SetupFailed("connect", str(exc)) from None
            put_off, aftermath = answer.report.get("Status") == "NotNow", answer.aftermath
            report = {"UDID": self._facts.udid, **answer.report}
            seen += 1

    def _put(self, url: str, step: str, body: bytes, content_type: str) -> bytes:
        signature = sign_detached(body, key=self._identity.key, certificate=self._identity.certificate)
        headers = {
            "Content-Type": content_type,
            "Mdm-Signature": base64.b64encode(signature).decode("ascii"),
            "User-Agent": USER_AGENT,
        }
        try:
            with self._client.stream("PUT", url, content=body, headers=headers) as response:
                if response.status_code == 401:
                    raise ServerUnauthorized(step, "the MDM server answered 401; the device removes its MDM profile")
                if response.status_code != 200:
                    raise SetupFailed(step, f"the MDM server answered HTTP {response.status_code}")
                received, size = [], 0
                for chunk in response.iter_bytes():  # read no further than a device would
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise SetupFailed(step, "the MDM server's answer is larger than a device reads")
                    received.append(chunk)
        except httpx.HTTPError as exc:
            raise SetupFailed(step, f"cannot reach the MDM server ({type(exc).__name__})") from None
        return b"".join(received)
