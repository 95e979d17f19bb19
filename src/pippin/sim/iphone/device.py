"""One simulated iPhone or iPad switched on: Setup Assistant's enrollment, then waiting for pushes.

The flow of reference §0: facts and identity from the factory, the cloud configuration from Apple, the signed
MachineInfo to the ConfigurationURL (or the web view and a sign-in, for user affinity), the enrollment profile
verified and installed (anchors, SCEP identity, MDM), then Authenticate, a push token from APNs, TokenUpdate.
Refusals are read as iOS reads them: ``com.apple.softwareupdate.required`` makes the device update and try once
more, ``com.apple.unrecognized.device`` ends setup.

Enrolled, the device connects to the ServerURL once when switched on and at every push, and answers the commands
(``command_answers.py``), saving what they changed after each one. After a NotNow it connects again by itself, as
iOS polls when it can (reference §3, "Handling NotNow"): at once a few times, then, while its last session still
ended put off (or cut short: it answers at most ``MAX_COMMANDS_PER_CONNECT`` in one connection; or with a restart,
after which iOS checks in), at each wait on APNs that brings no push, so a command put off is never left for a
push that the server, rightly, does not send. A connection that failed (unreachable, timed out, an HTTP error) is
tried again the same way, as iOS tries again later. After an EraseDevice it is wiped and goes through Setup
Assistant again; after a ShutDownDevice it is off until switched on again.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import plistlib
import ssl
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pippin.sim.iphone import scep_client
from pippin.sim.iphone.answer_rates import AnswerRates
from pippin.sim.iphone.checkin_client import MDMClient
from pippin.sim.iphone.command_answers import CommandAnswers
from pippin.sim.iphone.command_reading import Aftermath, Answer
from pippin.sim.iphone.device_state import DeviceState, StateDirectory
from pippin.sim.iphone.errors import RemovalRefused, ServerUnauthorized, SetupFailed
from pippin.sim.iphone.identity import fetch_from_factory
from pippin.sim.iphone.machine_info import device_info_header, signed_machine_info
from pippin.sim.iphone.profiles import MDM_TYPE, Profile, ProfileStore, read_profile, require_device_url
from pippin.sim.iphone.web_signin import filled_in, sign_in_form

PROFILE_TYPE = "application/x-apple-aspen-config"
PUSH_WAIT_SECONDS = 30.0
#: Sessions one wake-up may run (a NotNow, a restart or an erase makes the device connect again), bounded so a
#: server that puts every answer off cannot keep a device connecting.
MAX_SESSIONS_PER_WAKE = 10
Progress = Callable[[str, str], None]  # (serial, what happens now)


class SimulatedDevice:
    """A device with serial ``serial_number`` of the simulated Apple at ``sim_url``."""

    def __init__(
        self,
        *,
        sim_url: str,
        serial_number: str,
        states: StateDirectory,
        trust: Sequence[x509.Certificate] = (),
        user: str | None = None,
        password: str | None = None,
        progress: Progress | None = None,
        rates: AnswerRates | None = None,
    ) -> None:
        self.serial_number = serial_number
        self._rates = rates or AnswerRates()
        self._sim_url = sim_url
        self._states = states
        self._trust = list(trust)
        self._user, self._password = user, password
        self._progress = progress or (lambda serial, text: None)
        #: The last session ended with a command put off (NotNow), cut short, a restart or a failure: the device
        #: connects again by itself at its next wait on APNs.
        self.owes_poll = False
        self.state: DeviceState = states.load(serial_number)
        self.profiles = ProfileStore.from_state(self.state.profiles)

    # --- Setup Assistant -------------------------------------------------------------------------------------

    def boot(self) -> None:
        """Switch the device on: enroll unless it already is, then connect once to the ServerURL.

        :class:`SetupFailed` says at which step it stopped."""
        if self.state.enrolled and self.profiles.mdm_profile() is not None:
            self._say("already enrolled")
            if self.state.managed.powered_off:
                self.state.managed.powered_off = False
                self._save()
        else:
            self._setup_assistant()
        self.serve()

    def _setup_assistant(self) -> None:
        with self._sim() as sim:
            if self.state.facts is None or self.state.factory_identity is None:
                self._say("reading its facts and identity from the factory")
                self.state.facts, self.state.factory_identity = fetch_from_factory(sim, self.serial_number)
                self._save()
            self._say("asking Apple for its cloud configuration")
            configuration = self._cloud_configuration(sim)
        self.state.mdm_unremovable = configuration.get("IsMDMUnremovable") is True
        self.state.managed.supervised = configuration.get("IsSupervised") is True
        self.state.managed.awaiting_configuration = configuration.get("AwaitDeviceConfigured") is True
        trust = [*self._trust, *_anchor_certificates(configuration)]
        with self._mdm_client(trust) as mdm:
            profile = self._fetch_profile(mdm, configuration, trust)
            self._say("installing the enrollment profile" + ("" if profile.verified else " (not verified: unsigned)"))
            trust.extend(profile.anchors())
        with self._mdm_client(trust) as mdm, self._sim() as sim:
            self._install(profile, mdm, sim, awaiting=configuration.get("AwaitDeviceConfigured") is True)
        self._say("enrolled")

    def _cloud_configuration(self, sim: httpx.Client) -> dict[str, Any]:
        try:
            response = sim.post("/activation/cloud-configuration", json={"serial_number": self.serial_number})
        except httpx.HTTPError as exc:
            raise SetupFailed(
                "cloud configuration", f"cannot reach the simulated Apple ({type(exc).__name__})"
            ) from None
        body = _json_object(response)
        if response.status_code != 200:
            detail = body.get("detail") or body.get("error") or f"HTTP {response.status_code}"
            raise SetupFailed("cloud configuration", f"Apple has no configuration for this device: {detail}")
        return body

    def _fetch_profile(
        self, mdm: httpx.Client, configuration: dict[str, Any], trust: Sequence[x509.Certificate]
    ) -> Profile:
        assert self.state.facts is not None and self.state.factory_identity is not None
        updated = False
        while True:
            signed = signed_machine_info(self.state.facts, self.state.factory_identity)
            if configuration.get("ConfigurationWebURL"):
                response = self._web_enrollment(mdm, configuration["ConfigurationWebURL"], signed)
            else:
                url = require_device_url(
                    configuration.get("ConfigurationURL"), step="enrollment", what="the ConfigurationURL"
                )
                self._say("posting its signed MachineInfo")
                response = _send(
                    mdm,
                    "enrollment",
                    "POST",
                    url,
                    content=signed,
                    headers={"Content-Type": "application/pkcs7-signature"},
                )
            if response.status_code == 403:
                code, details = _refusal(response)
                if code == "com.apple.softwareupdate.required" and not updated:
                    self._update_software(details)
                    updated = True
                    continue
                if code == "com.apple.unrecognized.device":
                    raise SetupFailed("enrollment", "the MDM server does not recognise this device")
                raise SetupFailed("enrollment", f"the MDM server refused the device ({code or 'HTTP 403'})")
            if response.status_code != 200:
                raise SetupFailed("enrollment", f"the MDM server answered HTTP {response.status_code}")
            return read_profile(response.content, trusted=trust)

    def _update_software(self, details: dict[str, Any]) -> None:
        assert self.state.facts is not None
        os_version, build = details.get("OSVersion"), details.get("BuildVersion")
        if not self.state.facts.can_request_software_update:
            raise SetupFailed("enrollment", "the server requires a software update this OS cannot ask for")
        if not isinstance(os_version, str) or not os_version or len(os_version) > 32:
            raise SetupFailed("enrollment", "the software update required names no OSVersion")
        self._say(f"updating to iOS {os_version} as the server requires, then trying again")
        build_version = (
            build if isinstance(build, str) and build and len(build) <= 32 else self.state.facts.build_version
        )
        self.state.facts = self.state.facts.updated_to(os_version, build_version)
        self._save()

    def _web_enrollment(self, mdm: httpx.Client, web_url: object, signed: bytes) -> httpx.Response:
        """User affinity: the web view opens the URL with the device's MachineInfo; a person signs in."""
        url = require_device_url(web_url, step="sign-in", what="the ConfigurationWebURL")
        self._say("opening the enrollment web page")
        page = _send(mdm, "sign-in", "GET", url, headers={"x-apple-aspen-deviceinfo": device_info_header(signed)})
        if page.status_code != 200 or _content_type(page) == PROFILE_TYPE:
            return page
        if self._user is None or self._password is None:
            raise SetupFailed("sign-in", "the enrollment asks a user to sign in; give --user and --password")
        form = sign_in_form(page.text, page_url=str(page.url))
        self._say(f"signing in as {self._user}")
        answer = _send(
            mdm, "sign-in", "POST", form.action, data=filled_in(form, user=self._user, password=self._password)
        )
        if answer.status_code == 200 and _content_type(answer) != PROFILE_TYPE:
            raise SetupFailed("sign-in", "the sign-in was not accepted (the page answered no profile)")
        return answer

    def _install(self, profile: Profile, mdm: httpx.Client, sim: httpx.Client, *, awaiting: bool) -> None:
        assert self.state.facts is not None
        payload = profile.payload_of(MDM_TYPE)
        if payload is None:
            raise SetupFailed("profile", "the enrollment profile has no MDM payload")
        identity_payload = next(p for p in profile.payloads if p["PayloadUUID"] == payload["IdentityCertificateUUID"])
        if identity_payload["PayloadType"] != "com.apple.security.scep":
            raise SetupFailed("profile", "this simulated device gets its identity over SCEP only")
        self._say("getting its identity over SCEP")
        self.state.mdm_identity = scep_client.enroll(mdm, scep_client.SCEPPayload.from_payload(identity_payload))
        self._save()
        client = MDMClient(mdm, mdm_payload=payload, identity=self.state.mdm_identity, facts=self.state.facts)
        self._say("checking in: Authenticate")
        client.authenticate()
        if self.state.push_token is None or self.state.push_topic != client.topic:
            self.state.push_token = _register_push_token(sim, client.topic)
            self.state.push_topic = client.topic
        self.state.push_magic = str(uuid.uuid4()).upper()
        self.state.unlock_token = self.state.unlock_token or os.urandom(64)
        self._say("checking in: TokenUpdate")
        client.token_update(
            token=bytes.fromhex(self.state.push_token),
            push_magic=self.state.push_magic,
            unlock_token=self.state.unlock_token,
            awaiting_configuration=awaiting,
        )
        self.profiles.install(profile)
        self.state.enrolled = True
        self._save()

    # --- Enrolled ----------------------------------------------------------------------------------------------

    def wait_for_pushes(self, stop: threading.Event, *, wait_seconds: float = PUSH_WAIT_SECONDS) -> int:
        """Wait on APNs; a push with this enrollment's PushMagic makes the device connect. Returns the connects."""
        connects = 0
        with self._sim(timeout=wait_seconds + 30) as sim:
            while not stop.is_set() and self.state.enrolled and not self.state.managed.powered_off:
                try:
                    response = sim.get(f"/apns/tokens/{self.state.push_token}/next", params={"timeout": wait_seconds})
                except httpx.HTTPError:
                    stop.wait(1.0)
                    continue
                if response.status_code == 410:
                    return connects
                if response.status_code == 204 and self.owes_poll:
                    self._say("connecting again by itself: its last session left something owed")
                elif response.status_code != 200:
                    continue
                elif _json_object(response).get("mdm") != self.state.push_magic:
                    continue  # a push for an old enrollment: iOS ignores what does not carry its PushMagic
                else:
                    self._say("pushed: connecting to the server")
                try:
                    self.serve()
                except SetupFailed:
                    return connects  # the server answered 401 (the enrollment is gone) or re-enrollment failed
                connects += 1
        return connects

    # --- Answering commands --------------------------------------------------------------------------------------

    def serve(self) -> int:
        """Connect to the ServerURL and answer commands until the server has none; the commands answered.

        It connects again after a NotNow, a cut-short session, a restart or an erase, up to
        ``MAX_SESSIONS_PER_WAKE`` sessions; what is still owed then, or after a failed connection, it comes back for
        at its next wait (:attr:`owes_poll`). A 401 removes the MDM profile and, like a failed re-enrollment after
        an erase, raises :class:`SetupFailed`."""
        answered = 0
        for _ in range(MAX_SESSIONS_PER_WAKE):
            if not self.state.enrolled or self.state.managed.powered_off:
                break
            try:
                with self._mdm_client(self._trust_now()) as mdm:
                    session = self._client(mdm).session(self._answer)
            except ServerUnauthorized:
                self._say("the server answered 401: removing the MDM profile")
                with self._sim() as sim:
                    self._drop_enrollment(sim)
                raise
            except SetupFailed as exc:
                # iOS tries again later by itself (reference section 2, HTTP status semantics): a command the
                # server handed out in a response that never arrived is not left for a push.
                self._say(f"the connection failed ({exc.reason}); trying again later")
                self.owes_poll = True
                break
            answered += session.commands
            if session.aftermath is not None:
                self._follow(session.aftermath)  # the command the server handed out meanwhile was not run
            elif session.put_off:
                self._say("a command was put off (NotNow): connecting again")
            elif session.cut_short:
                self._say(f"stopped after {session.commands} commands in one connection: connecting again")
            else:
                self.owes_poll = False
                break
            self.owes_poll = True  # it connects again: now, or at its next wait once this wake's sessions are spent
        return answered

    def _answer(self, body: bytes) -> Answer:
        answers = CommandAnswers(self.state, self.profiles, trust=self._trust_now(), rates=self._rates)
        answer = answers.answer(body)
        self._say(f"answered {answer.request_type or 'a command'}: {answer.report.get('Status')}")
        self._save()
        return answer

    def _follow(self, aftermath: Aftermath) -> None:
        """What the device does once the server has its answer to an erase, restart, shutdown or MDM removal."""
        if aftermath is Aftermath.restart:
            self._say("restarting")
            self.state.managed.restarts += 1
            self._save()
        elif aftermath is Aftermath.shut_down:
            self._say("shutting down")
            self.state.managed.powered_off = True
            self._save()
        elif aftermath is Aftermath.unenroll:
            self._say("the server removed the MDM profile")
            for identifier in list(self.state.managed.managed_profiles):
                if self.profiles.find(identifier) is not None:
                    self.profiles.remove(identifier, by_user=False)  # iOS removes what MDM installed with it
            self.state.managed.managed_profiles.clear()
            mdm_profile = self.profiles.mdm_profile()
            if mdm_profile is not None:
                self.remove_profile(mdm_profile.identifier, by_user=False)
        else:
            self._erase()

    def _erase(self) -> None:
        """Wipe the device, keeping only what the factory gave it, and run Setup Assistant again."""
        self._say("erasing")
        with self._sim() as sim:
            self._drop_enrollment(sim)
        self.state = DeviceState(
            serial_number=self.serial_number,
            facts=self.state.facts,
            factory_identity=self.state.factory_identity,
            managed=self.state.managed.erased(),
        )
        self.profiles = ProfileStore()
        self._save()
        self._setup_assistant()

    def remove_profile(self, identifier: str, *, by_user: bool = True) -> None:
        """Remove an installed profile as the user (refused when locked) or as the device itself."""
        profile = self.profiles.find(identifier)
        if profile is None:
            raise RemovalRefused(f"no profile {identifier!r} is installed")
        payload = profile.payload_of(MDM_TYPE)
        if by_user and payload is not None and self.state.mdm_unremovable:
            # The cloud configuration's IsMDMUnremovable locks the MDM profile whatever the profile says.
            raise RemovalRefused("Apple's cloud configuration makes this device's MDM profile unremovable")
        self.profiles.remove(identifier, by_user=by_user)
        with self._sim() as sim, self._mdm_client(self._trust_now()) as mdm:
            if payload is not None and payload.get("CheckOutWhenRemoved") is True and self.state.mdm_identity:
                with contextlib.suppress(SetupFailed):
                    self._client(mdm, payload).check_out()  # once, best effort, as iOS does
            if payload is not None:
                self._drop_enrollment(sim)
        self._save()

    def _drop_enrollment(self, sim: httpx.Client) -> None:
        mdm_profile = self.profiles.mdm_profile()
        if mdm_profile is not None:
            self.profiles.remove(mdm_profile.identifier, by_user=False)
        if self.state.push_token:
            with contextlib.suppress(httpx.HTTPError):
                sim.delete(f"/apns/tokens/{self.state.push_token}")
        self.state.push_token = self.state.push_topic = self.state.push_magic = None
        self.state.mdm_identity = None
        self.state.enrolled = False
        self._save()

    # --- Plumbing ------------------------------------------------------------------------------------------------

    def _client(self, mdm: httpx.Client, payload: dict[str, Any] | None = None) -> MDMClient:
        profile = self.profiles.mdm_profile()
        found = payload or (profile.payload_of(MDM_TYPE) if profile else None)
        if found is None or self.state.mdm_identity is None or self.state.facts is None:
            raise SetupFailed("connect", "the device is not enrolled")
        return MDMClient(mdm, mdm_payload=found, identity=self.state.mdm_identity, facts=self.state.facts)

    def _trust_now(self) -> list[x509.Certificate]:
        return [*self._trust, *(anchor for profile in self.profiles.installed() for anchor in profile.anchors())]

    def _save(self) -> None:
        self.state.profiles = self.profiles.to_state()
        self._states.save(self.state)

    def _say(self, text: str) -> None:
        self._progress(self.serial_number, text)

    def _sim(self, *, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self._sim_url, timeout=timeout, verify=_ssl_context(self._trust))

    def _mdm_client(self, trust: Sequence[x509.Certificate]) -> httpx.Client:
        return httpx.Client(
            timeout=30.0,
            follow_redirects=True,
            verify=_ssl_context(trust),
            headers={"User-Agent": "MDM/1.0"},
        )


def _register_push_token(sim: httpx.Client, topic: str) -> str:
    try:
        response = sim.post("/apns/tokens", json={"topic": topic})
    except httpx.HTTPError as exc:
        raise SetupFailed("push token", f"cannot reach the simulated APNs ({type(exc).__name__})") from None
    token = _json_object(response).get("token")
    if response.status_code != 201 or not isinstance(token, str):
        raise SetupFailed("push token", f"the simulated APNs gave no token (HTTP {response.status_code})")
    return str(token)


def _send(client: httpx.Client, step: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise SetupFailed(step, f"cannot reach the MDM server ({type(exc).__name__})") from None


def _refusal(response: httpx.Response) -> tuple[str | None, dict[str, Any]]:
    """Apple's 403 error body (JSON or XML plist, by its Content-Type): its ``code`` and ``details``."""
    body: object = None
    try:
        if "json" in _content_type(response):
            body = json.loads(response.content)
        else:
            body = plistlib.loads(response.content, fmt=plistlib.FMT_XML)
    except (ValueError, plistlib.InvalidFileException):
        body = None
    if not isinstance(body, dict):
        return None, {}
    code, details = body.get("code"), body.get("details")
    return (code if isinstance(code, str) else None), (details if isinstance(details, dict) else {})


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _content_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";")[0].strip().lower()


def _anchor_certificates(configuration: dict[str, Any]) -> list[x509.Certificate]:
    """The cloud configuration's AnchorCertificates (base64 DER): what the device trusts during setup."""
    found = []
    for value in configuration.get("AnchorCertificates") or []:
        try:
            found.append(x509.load_der_x509_certificate(base64.b64decode(value)))
        except (TypeError, ValueError):
            raise SetupFailed("cloud configuration", "an AnchorCertificates entry is not a certificate") from None
    return found


def _ssl_context(trust: Sequence[x509.Certificate]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if trust:
        context.load_verify_locations(
            cadata="".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in trust)
        )
    return context
