"""``GET|POST /enroll/web/{reference}`` over HTTP: the device's signed MachineInfo opens a sign-in page, an
organisation user's good sign-in gets the signed profile with them as primary user, and every hostile request
(no or forged header, oversized or malformed form, replayed or expired state, markup as a username) gets a
clear page, never 401 or 500. Both databases; the clock is the test's."""

from __future__ import annotations

import base64
import plistlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.applications import Starlette

from pippin.admin import directory
from pippin.admin.passwords import PasswordWork
from pippin.config import Settings
from pippin.dep.enrollment_reference import ProfileRevision, build_reference
from pippin.device.enrollment_web import MAX_REQUEST_BYTES
from pippin.mdm import enrollment_web_states as states
from pippin.pki.authority import load_authority
from pippin.pki.challenges import binding_of, redeem_challenge
from pippin.store.db import transaction
from pippin.store.models import AuditEvent, DEPProfile, EnrollmentChallenge, EnrollmentWebState, UserAffinity
from tests.actors import TEST_ACTOR
from tests.clocks import Clock
from tests.mdm.device_ca import device_ca, issue_device_identity, machine_info_plist, sign_machine_info
from tests.mdm.enrollment_setup import NOW, ORGANIZATION, activate_push_certificate, assigned_device, dep_profile
from tests.mdm.profiles import payloads_by_type, read_profile
from tests.servers import build_server, cheap_argon2, resources_of

CA = device_ca()
OTHER_CA = device_ca("Other", keys="other")
SERIAL = "C8QH6T96DPNG"
UDID = "00008110-000A1B2C3D4E5F60"
DEVICE = issue_device_identity(CA, UDID)
PASSWORD = "correct horse battery staple"
STATE = re.compile(r'name="state" value="([A-Za-z0-9_-]+)"')


def _header(serial: str = SERIAL, udid: str = UDID, *, ca=CA, **plist: object) -> str:  # type: ignore[no-untyped-def]
    identity = DEVICE if ca is CA and udid == UDID else issue_device_identity(ca, udid)
    signed = sign_machine_info(machine_info_plist(serial=serial, udid=udid, **plist), identity, ca=ca)  # type: ignore[arg-type]
    return base64.b64encode(signed).decode()


@dataclass
class World:
    client: TestClient
    server: Starlette
    clock: Clock
    reference: str
    without_affinity: str
    user_id: int
    tmp_path: Path

    @property
    def url(self) -> str:
        return f"/enroll/web/{self.reference}"

    def open(self, header: str | None = None, *, url: str | None = None) -> httpx.Response:
        headers = {"x-apple-aspen-deviceinfo": header if header is not None else _header()}
        return self.client.get(url or self.url, headers=headers)

    def state(self) -> str:
        page = self.open()
        assert page.status_code == 200, page.text
        found = STATE.search(page.text)
        assert found is not None
        return found.group(1)

    def sign_in(self, state: str, username: str = "alice", password: str = PASSWORD, **headers: str) -> httpx.Response:
        return self.client.post(
            self.url, data={"state": state, "username": username, "password": password}, headers=headers
        )

    def count(self, model: type) -> int:
        with resources_of(self.server).session_factory() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _world(settings: Settings, tmp_path: Path, *, anchors: bool = True) -> Iterator[World]:
    bundle = tmp_path / "device-cas.pem"
    bundle.write_bytes(CA.pem_bundle())
    configured = settings.model_copy(
        update={"device_trust_anchors_file": bundle if anchors else None, "server_url": "https://mdm.example.com"}
    )
    clock = Clock(NOW)
    work = PasswordWork(cheap_argon2(), at_once=2, waiting=8, per_client=8)
    server = build_server(configured, clock=clock, password_work=work)
    resources = resources_of(server)
    with resources.session_factory() as session, session.begin():
        activate_push_certificate(session)
        profile = dep_profile(session, name="Staff", locked=True)
        profile.user_affinity = UserAffinity.with_user
        without = dep_profile(session, name="Shared", locked=True)
        assigned_device(session, SERIAL, profile=profile)
        assigned_device(session, "NOPROFILE001", profile=None)
        assigned_device(session, "EMPTY0000001", profile=profile, profile_status="empty")
        assigned_device(session, "GONE00000001", profile=profile, apple_status="removed")
        reference = build_reference(resources.secret_box, ProfileRevision(profile_id=profile.id, revision=3))
        shared = build_reference(resources.secret_box, ProfileRevision(profile_id=without.id, revision=3))
        user = directory.add_user(
            session, username="alice", password=PASSWORD, display_name="Alice", actor=TEST_ACTOR,
            passwords=cheap_argon2(),
        )  # fmt: skip
        directory.add_user(session, username="carol", password=PASSWORD, actor=TEST_ACTOR, passwords=cheap_argon2())
        directory.disable_user(session, username="carol", actor=TEST_ACTOR)
    with TestClient(server, raise_server_exceptions=False) as client:
        yield World(client, server, clock, reference, shared, user.id, tmp_path)
    resources.engine.dispose()


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[World]:
    yield from _world(settings, tmp_path)


def _assert_page(answer: httpx.Response, status: int, *words: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "Traceback" not in answer.text
    for word in words:
        assert word in " ".join(answer.text.split()), answer.text


def test_a_user_signs_in_and_the_device_gets_its_profile_with_them_as_primary_user(world: World) -> None:
    page = world.open()
    _assert_page(page, 200, "Sign in to set up this device", 'autocomplete="username"', '<label for="password">')
    assert page.headers["cache-control"] == "no-store"
    assert "script-src" not in page.headers["content-security-policy"]  # the console's policy: no script at all
    assert f'action="{world.url}"' in page.text
    state = STATE.search(page.text)
    assert state is not None
    answer = world.sign_in(state.group(1), username="Alice")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-apple-aspen-config"
    resources = resources_of(world.server)
    with resources.session_factory() as session:
        authority = load_authority(session, box=resources.secret_box)
        challenge = session.scalars(select(EnrollmentChallenge)).one()
        signed_in = session.scalars(select(AuditEvent).where(AuditEvent.action == "directory.sign_in")).one()
    assert authority is not None
    profile = read_profile(answer.content, trusted=authority.certificate, workdir=world.tmp_path / "p")
    assert profile["PayloadRemovalDisallowed"] is True
    assert profile["PayloadOrganization"] == ORGANIZATION
    binding = (challenge.serial_number, challenge.udid, challenge.primary_user_id, challenge.uses_left)
    assert binding == (SERIAL, UDID, world.user_id, 1)
    clear = payloads_by_type(profile)["com.apple.security.scep"][0]["PayloadContent"]["Challenge"]
    with transaction(resources.session_factory) as session:  # what SCEP does with the device's request
        redeemed = binding_of(redeem_challenge(session, clear, now=NOW))
    assert (redeemed.serial_number, redeemed.udid, redeemed.primary_user_id) == (SERIAL, UDID, world.user_id)
    assert (signed_in.actor, signed_in.interface, signed_in.detail) == ("alice", "device", {"serial_number": SERIAL})


def test_a_used_state_cannot_be_replayed(world: World) -> None:
    state = world.state()
    assert world.sign_in(state).status_code == 200
    _assert_page(world.sign_in(state), 400, "Setup must start again", "been used already", "start of setup")
    assert world.count(EnrollmentChallenge) == 1


def test_a_wrong_password_shows_the_page_again_and_the_same_state_still_works(world: World) -> None:
    state = world.state()
    wrong = world.sign_in(state, password="not the password at all")
    _assert_page(wrong, 400, "The username or the password is wrong", 'role="alert"')
    assert f'value="{state}"' in wrong.text and 'value="alice"' in wrong.text
    assert world.sign_in(state).status_code == 200


def test_an_unknown_user_reads_like_a_wrong_password_and_a_disabled_one_is_told(world: World) -> None:
    state = world.state()
    unknown = world.sign_in(state, username="mallory")
    _assert_page(unknown, 400, "The username or the password is wrong")
    _assert_page(world.sign_in(state, username="carol"), 403, "This account is disabled")
    assert world.count(EnrollmentChallenge) == 0


def test_markup_as_a_username_is_shown_as_text(world: World) -> None:
    state = world.state()
    answer = world.sign_in(state, username='"><script>alert(1)</script>')
    _assert_page(answer, 400, "The username or the password is wrong")
    assert "<script>alert(1)" not in answer.text and "&lt;script&gt;alert(1)" in answer.text


def test_guessing_is_throttled_with_retry_after(world: World) -> None:
    state = world.state()
    for attempt in range(5):
        world.sign_in(state, password=f"guess number {attempt}")
    throttled = world.sign_in(state)
    _assert_page(throttled, 429, "Too many sign-in attempts")
    assert int(throttled.headers["retry-after"]) > 0


def test_an_expired_state_says_to_restart_setup(world: World) -> None:
    state = world.state()
    world.clock.advance(seconds=states.STATE_LIFETIME.total_seconds())
    _assert_page(world.sign_in(state), 400, "Setup must start again", "expired")


def test_a_sign_in_from_another_device_is_refused(world: World) -> None:
    state = world.state()
    other = _header(udid="00008110-FFFFFFFFFFFFFFFF")
    answer = world.sign_in(state, **{"x-apple-aspen-deviceinfo": other})
    _assert_page(answer, 400, "opened by another device")
    assert world.sign_in(state, **{"x-apple-aspen-deviceinfo": _header()}).status_code == 200


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (None, "did not say which one it is"),
        ("", "empty"),
        ("not base64 at all!", "not base64"),
        (base64.b64encode(b"\x30\x80" * 2000).decode(), ""),
        (base64.b64encode(b"x" * 100).decode(), ""),
        ("A" * 200_000, ""),
    ],
)
def test_a_missing_or_forged_device_header_is_refused_and_opens_nothing(
    world: World, header: str | None, words: str
) -> None:
    headers = {} if header is None else {"x-apple-aspen-deviceinfo": header}
    answer = world.client.get(world.url, headers=headers)
    assert answer.status_code in (400, 431), answer.text
    if answer.status_code == 400:
        _assert_page(answer, 400, "Setup cannot continue", words)
    assert world.count(EnrollmentWebState) == 0


def test_machine_info_signed_by_another_ca_is_refused(world: World) -> None:
    _assert_page(world.open(_header(ca=OTHER_CA)), 400, "Setup cannot continue")
    assert world.count(EnrollmentWebState) == 0


def test_a_device_not_managed_here_or_an_unknown_page_is_told_so(world: World) -> None:
    _assert_page(world.open(_header(serial="GONE00000001")), 403, "not one your organisation manages")
    for serial in ("NEVERSEEN001", "NOPROFILE001", "EMPTY0000001"):
        _assert_page(world.open(_header(serial=serial)), 403, "not one your organisation manages")
    _assert_page(world.open(url=f"/enroll/web/{world.without_affinity}"), 404, "no enrollment sign-in page")
    for url in ("/enroll/web/forged", "/enroll/web/" + "A" * 40, "/enroll/web/%3Cscript%3E"):
        _assert_page(world.open(url=url), 404, "no enrollment sign-in page")
    assert world.count(EnrollmentWebState) == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (b"state=x&username=alice&password=y", "application/x-www-form-urlencoded", 400, "start again"),
        (b"username=alice&password=y", "application/x-www-form-urlencoded", 400, "start again"),
        (b"state=a&state=b&username=alice&password=y", "application/x-www-form-urlencoded", 400, "not the one"),
        (b"state=a&extra=1", "application/x-www-form-urlencoded", 400, "not the one"),
        (b"state=%FF%FE&username=alice", "application/x-www-form-urlencoded", 400, "not text"),
        ("state=é".encode(), "application/x-www-form-urlencoded", 400, "not text"),
        (b'{"state": "x"}', "application/json", 400, "not sent as a form"),
        (b"x" * (MAX_REQUEST_BYTES + 1), "application/x-www-form-urlencoded", 413, "larger"),
    ],
)
def test_malformed_or_oversized_forms_get_a_clear_page(
    world: World, body: bytes, content_type: str, status: int, words: str
) -> None:
    answer = world.client.post(world.url, content=body, headers={"Content-Type": content_type})
    _assert_page(answer, status, words)
    assert world.count(EnrollmentChallenge) == 0


def test_an_oversized_form_without_a_length_is_refused_as_it_streams(world: World) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 1024

    answer = world.client.post(
        world.url, content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    _assert_page(answer, 413, "larger")


def test_a_long_password_or_username_is_a_wrong_sign_in_not_a_failure(world: World) -> None:
    state = world.state()
    _assert_page(world.sign_in(state, password="p" * 2000), 400, "wrong")
    _assert_page(world.sign_in(state, username="u" * 3000), 400, "wrong")


def test_other_methods_are_refused_plainly(world: World) -> None:
    answer = world.client.put(world.url, content=b"x")
    _assert_page(answer, 405, "no such request")


def test_without_trust_anchors_the_page_says_setup_cannot_continue_now(settings: Settings, tmp_path: Path) -> None:
    for world in _world(settings, tmp_path, anchors=False):
        answer = world.open()
        _assert_page(answer, 503, "Setup cannot continue right now", "tell your IT department")
        assert "PIPPIN_" not in answer.text  # the operator's words stay in the log


def _require(world: World, version: str | None) -> None:
    with resources_of(world.server).session_factory() as session, session.begin():
        session.scalars(select(DEPProfile).where(DEPProfile.name == "Staff")).one().minimum_os_version = version


def _update_required(answer: httpx.Response, version: str) -> None:
    """Apple's 403 plist, which Setup Assistant reads itself, rather than a page for the person."""
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    body = plistlib.loads(answer.content, fmt=plistlib.FMT_XML)
    assert (body["code"], body["details"]) == ("com.apple.softwareupdate.required", {"OSVersion": version})


def test_an_older_device_that_can_update_is_told_to_before_anyone_signs_in(world: World) -> None:
    _require(world, "17.4")
    _update_required(world.open(_header(os_version="17.0", can_update=True)), "17.4")
    assert world.count(EnrollmentWebState) == 0
    assert world.open(_header(os_version="17.0", can_update=False)).status_code == 200  # it cannot: it enrolls
    page = world.open(_header(os_version="17.4.1"))
    assert page.status_code == 200 and world.count(EnrollmentWebState) == 2


def test_a_minimum_raised_after_the_page_opened_refuses_the_sign_in_and_uses_nothing(world: World) -> None:
    state = world.state()  # the default header: iOS 17.0, able to update
    _require(world, "17.2")
    _update_required(world.sign_in(state, **{"x-apple-aspen-deviceinfo": _header()}), "17.2")
    assert world.count(EnrollmentChallenge) == 0
    with resources_of(world.server).session_factory() as session:
        assert session.scalars(select(EnrollmentWebState)).one().used_at is None
    _require(world, None)
    assert world.sign_in(state, **{"x-apple-aspen-deviceinfo": _header()}).status_code == 200
