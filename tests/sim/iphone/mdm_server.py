"""An MDM server for the device's tests, as small as the protocol allows and built apart from the device's code:
it verifies the signed MachineInfo, answers Apple's 403 refusals, serves a signed enrollment profile (directly or
after a web sign-in), runs a SCEP CA, verifies every check-in's Mdm-Signature before recording it, and hands out
the commands a test gives it."""

from __future__ import annotations

import base64
import html
import plistlib
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from pippin.sim.iphone.device_state import DeviceState, StateDirectory
from pippin.sim.models import SimDevice, SimMDMServer, SimProfile
from tests.servers import serve_in_thread
from tests.sim.iphone.pki import DeviceIdentity, SCEPAuthority, facts, issue, new_ca, sign_profile, verify_cms
from tests.sim.iphone.profiles import enrollment_profile, plist
from tests.sim.portal_client import assign, create_devices, create_server
from tests.simulator import RunningSimulator

PROFILE_TYPE = "application/x-apple-aspen-config"
DEVICE_CA = new_ca("Simulated iPhone Device CA")


@dataclass
class MDMServer:
    base_url: str = ""
    ca: DeviceIdentity = field(default_factory=lambda: new_ca("MDM server CA"))
    scep: SCEPAuthority = field(default_factory=SCEPAuthority)
    locked: bool = False
    minimum_os: tuple[str, str] | None = None  # (OSVersion, BuildVersion) below which enrollment is refused
    unrecognized: bool = False
    users: dict[str, str] = field(default_factory=dict)
    unauthorized: bool = False  # answer 401 to connects
    failing: bool = False  # answer 500 to connects
    failed: threading.Event = field(default_factory=threading.Event)
    machine_infos: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    signed_in: list[str] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    commands: list[bytes] = field(default_factory=list)  # handed out in order, one per connect request
    _states: dict[str, str] = field(default_factory=dict)

    def profile(self) -> bytes:
        signer = issue(self.ca, "Profile signing")
        body = enrollment_profile(
            base_url=self.base_url, anchor=self.ca, locked=self.locked, challenge=self.scep.challenge
        )
        return sign_profile(plist(body), signer)

    def anchor_b64(self) -> str:
        return base64.b64encode(self.ca.certificate.public_bytes(serialization.Encoding.DER)).decode()

    def message_types(self) -> list[str]:
        return [m.get("MessageType") or m.get("Status", "?") for m in self.messages]

    # --- routes ---

    async def enroll(self, request: Request) -> Response:
        assert request.headers["content-type"] == "application/pkcs7-signature"
        refused = self._read_machine_info(await request.body())
        return refused or Response(self.profile(), media_type=PROFILE_TYPE)

    async def web(self, request: Request) -> Response:
        if request.method == "GET":
            refused = self._read_machine_info(base64.b64decode(request.headers["x-apple-aspen-deviceinfo"]))
            if refused is not None:
                return refused
            state = secrets.token_urlsafe(16)
            self._states[state] = self.machine_infos[-1]["SERIAL"]
            return self._sign_in_page(state)
        form = await request.form()
        user, password, state = (str(form.get(k, "")) for k in ("username", "password", "state"))
        if state not in self._states or self.users.get(user) != password:
            return self._sign_in_page(state, error="Wrong user name or password.")
        del self._states[state]
        self.signed_in.append(user)
        return Response(self.profile(), media_type=PROFILE_TYPE)

    async def scep_endpoint(self, request: Request) -> Response:
        operation = request.query_params.get("operation")
        if operation == "GetCACaps":
            return PlainTextResponse(self.scep.caps)
        if operation == "GetCACert":
            der = self.scep.ca.certificate.public_bytes(serialization.Encoding.DER)
            return Response(der, media_type="application/x-x509-ca-cert")
        return Response(self.scep.answer(await request.body()), media_type="application/x-pki-message")

    async def checkin(self, request: Request) -> Response:
        assert request.headers["content-type"] == "application/x-apple-aspen-mdm-checkin"
        self._record(request, await request.body())
        return Response(b"")

    async def connect(self, request: Request) -> Response:
        self._record(request, await request.body())
        if self.unauthorized:
            return Response(status_code=401)
        if self.failing:
            self.failed.set()
            return Response(status_code=500)
        self.connected.set()
        if self.commands:
            return Response(self.commands.pop(0), media_type="application/xml")
        return Response(b"")

    def _record(self, request: Request, body: bytes) -> None:
        verified = verify_cms(base64.b64decode(request.headers["mdm-signature"]), detached=body)
        assert verified.signer.issuer == self.scep.ca.certificate.subject
        self.messages.append(plistlib.loads(body))

    def _read_machine_info(self, signed: bytes) -> Response | None:
        info = plistlib.loads(verify_cms(signed).content)
        self.machine_infos.append(info)
        if self.unrecognized:
            return _refusal({"code": "com.apple.unrecognized.device"})
        if self.minimum_os is not None and info["OS_VERSION"] < self.minimum_os[0]:
            os_version, build = self.minimum_os
            details = {"OSVersion": os_version, "BuildVersion": build}
            return _refusal({"code": "com.apple.softwareupdate.required", "details": details})
        return None

    def _sign_in_page(self, state: str, *, error: str = "") -> HTMLResponse:
        return HTMLResponse(
            f"""<!doctype html><html><body><p>{html.escape(error)}</p>
            <form method="post" action="/web"><input type="hidden" name="state" value="{html.escape(state)}">
            <label>User <input type="text" name="username"></label>
            <label>Password <input type="password" name="password"></label>
            <input type="submit" value="Sign in"></form></body></html>"""
        )


def _refusal(body: dict[str, Any]) -> Response:
    return Response(plistlib.dumps(body), status_code=403, media_type="application/xml")


@contextmanager
def run_mdm_server(server: MDMServer) -> Iterator[MDMServer]:
    app = Starlette(
        routes=[
            Route("/enroll", server.enroll, methods=["POST"]),
            Route("/web", server.web, methods=["GET", "POST"]),
            Route("/mdm/scep", server.scep_endpoint, methods=["GET", "POST"]),
            Route("/mdm/checkin", server.checkin, methods=["PUT"]),
            Route("/mdm/connect", server.connect, methods=["PUT"]),
        ]
    )
    with serve_in_thread(app, lifespan="off") as base_url:
        server.base_url = base_url
        yield server


def device_assigned_to(
    apple: RunningSimulator, mdm: MDMServer, states: StateDirectory, *, os_version: str = "18.1", **profile: Any
) -> str:
    """A new device of the simulator assigned a DEP profile that points at ``mdm``; its factory facts and identity
    are put in its saved state (made here, standing in for the simulator's factory). Returns its serial."""
    server = create_server(apple.portal)
    (serial,) = create_devices(apple.portal, 1)
    assign(apple.portal, server, [serial])
    body = {"url": f"{mdm.base_url}/enroll", "anchor_certs": [mdm.anchor_b64()], **profile}
    profile_uuid = uuid.uuid4().hex.upper()
    with apple.state.transaction() as session:
        server_id = session.scalars(select(SimMDMServer.id).where(SimMDMServer.server_uuid == server)).one()
        now = apple.state.clock.now()
        session.add(SimProfile(profile_uuid=profile_uuid, server_id=server_id, body=body, created_at=now))
        session.execute(
            update(SimDevice)
            .where(SimDevice.serial_number == serial)
            .values(profile_uuid=profile_uuid, profile_status="assigned", profile_assign_time=now)
        )
    identity = issue(DEVICE_CA, serial)
    states.save(
        DeviceState(serial_number=serial, facts=facts(serial, os_version=os_version), factory_identity=identity)
    )
    return serial
