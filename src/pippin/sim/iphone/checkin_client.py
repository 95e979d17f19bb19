"""The device's MDM client: check-in messages to the CheckInURL and connections to the ServerURL (reference §2, §3).

Every request carries ``Mdm-Signature``, a detached CMS signature over the exact body by the SCEP identity
(§4; the profile's ``SignMessage``). Until the server's commands are simulated, a command the server sends is
answered with the error iOS gives a command it does not know, and the device connects again until the server
answers with an empty body, as mdmb does (§7).
"""

from __future__ import annotations

import base64
import plistlib
from typing import Any

import httpx

from pippin.sim.iphone.cms import sign_detached
from pippin.sim.iphone.errors import ServerUnauthorized, SetupFailed
from pippin.sim.iphone.identity import DeviceFacts, DeviceIdentity

CHECKIN_TYPE = "application/x-apple-aspen-mdm-checkin"
COMMAND_TYPE = "application/x-apple-aspen-mdm"
USER_AGENT = "MDM/1.0"
MAX_COMMANDS_PER_CONNECT = 100
MAX_ANSWER_BYTES = 10 * 1024 * 1024


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

    def connect(self) -> int:
        """Tell the server the device is idle and answer what it sends until it has nothing; the commands seen."""
        report: dict[str, Any] = {"Status": "Idle", "UDID": self._facts.udid}
        for seen in range(MAX_COMMANDS_PER_CONNECT + 1):
            answer = self._put(self.server_url, "connect", plistlib.dumps(report, fmt=plistlib.FMT_XML), COMMAND_TYPE)
            if not answer.strip():
                return seen
            report = self._unknown_command(answer)
        raise SetupFailed("connect", f"the server sent more than {MAX_COMMANDS_PER_CONNECT} commands in one connect")

    def _unknown_command(self, answer: bytes) -> dict[str, Any]:
        try:
            command = plistlib.loads(answer, fmt=plistlib.FMT_XML)
            uuid = command["CommandUUID"]
        except (plistlib.InvalidFileException, ValueError, KeyError, TypeError):
            raise SetupFailed("connect", "the server's answer is not an MDM command plist") from None
        return {
            "Status": "Error",
            "UDID": self._facts.udid,
            "CommandUUID": uuid,
            "ErrorChain": [
                {
                    "ErrorCode": 12021,
                    "ErrorDomain": "MCMDMErrorDomain",
                    "LocalizedDescription": "Unknown command",
                    "USEnglishDescription": "Unknown command",
                }
            ],
        }

    def _put(self, url: str, step: str, body: bytes, content_type: str) -> bytes:
        signature = sign_detached(body, key=self._identity.key, certificate=self._identity.certificate)
        headers = {
            "Content-Type": content_type,
            "Mdm-Signature": base64.b64encode(signature).decode("ascii"),
            "User-Agent": USER_AGENT,
        }
        try:
            response = self._client.put(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SetupFailed(step, f"cannot reach the MDM server ({type(exc).__name__})") from None
        if response.status_code == 401:
            raise ServerUnauthorized(step, "the MDM server answered 401; the device removes its MDM profile")
        if response.status_code != 200:
            raise SetupFailed(step, f"the MDM server answered HTTP {response.status_code}")
        if len(response.content) > MAX_ANSWER_BYTES:
            raise SetupFailed(step, "the MDM server's answer is larger than a device reads")
        return response.content
