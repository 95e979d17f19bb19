"""``POST /mdm/enroll/{reference}`` over HTTP: a device's signed MachineInfo in, its signed profile out; every
refusal Apple's or the device contract's, nothing stored, never 401 or a traceback."""

from __future__ import annotations

import base64
import plistlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.applications import Starlette

from pippin.config import Settings
from pippin.crypto.certs import certificate_to_der
from pippin.dep.enrollment_reference import ProfileRevision, build_reference
from pippin.mdm.machine_info import MAX_BODY_BYTES
from pippin.pki.authority import load_authority
from pippin.store.models import DEPProfile, EnrollmentChallenge
from tests.clocks import Clock
from tests.mdm.device_ca import DeviceIdentity, device_ca, issue_device_identity, machine_info_plist, sign_machine_info
from tests.mdm.enrollment_setup import NOW, ORGANIZATION, TOPIC, activate_push_certificate, assigned_device, dep_profile
from tests.mdm.profiles import check_against_apples_schemas, payloads_by_type, read_profile
from tests.servers import build_server, resources_of

CA = device_ca()
SERIAL = "C8QH6T96DPNG"
UDID = "00008110-000A1B2C3D4E5F60"
DEVICE = issue_device_identity(CA, UDID)


@dataclass
class World:
    client: TestClient
    server: Starlette
    references: dict[str, str]
    tmp_path: Path

    def post(self, body: bytes, *, profile: str = "locked") -> httpx.Response:
        return self.client.post(
            f"/mdm/enroll/{self.references[profile]}", content=body,
            headers={"Content-Type": "application/pkcs7-signature"},
        )  # fmt: skip

    def challenges(self) -> int:
        with resources_of(self.server).session_factory() as session:
            return int(session.scalar(select(func.count()).select_from(EnrollmentChallenge)) or 0)

    def authority(self) -> x509.Certificate:
        resources = resources_of(self.server)
        with resources.session_factory() as session:
            authority = load_authority(session, box=resources.secret_box)
        assert authority is not None
        return authority.certificate


def _anchors_file(tmp_path: Path) -> Path:
    path = tmp_path / "device-cas.pem"
    path.write_bytes(CA.pem_bundle())
    return path


def _world(settings: Settings, tmp_path: Path, *, anchors: bool = True, push: bool = True) -> Iterator[World]:
    configured = settings.model_copy(
        update={"device_trust_anchors_file": _anchors_file(tmp_path) if anchors else None,
                "server_url": "https://mdm.example.com"}
    )  # fmt: skip
    server = build_server(configured, clock=Clock(NOW))
    resources = resources_of(server)
    references = {}
    with resources.session_factory() as session, session.begin():
        if push:
            activate_push_certificate(session)
        locked = dep_profile(session, name="Locked", locked=True)
        removable = dep_profile(session, name="Removable", locked=False, revision=1)
        tls = x509.load_der_x509_certificate(certificate_to_der(device_ca("TLS").root))
        removable.anchor_certs = [base64.b64encode(certificate_to_der(tls)).decode(), "not base64 DER"]
        assigned_device(session, SERIAL, profile=locked)
        assigned_device(session, "REMOVABLE01", profile=removable)
        assigned_device(session, "EMPTY0000001", profile=locked, profile_status="empty")
        assigned_device(session, "REMOVED00001", profile=locked, apple_status="removed")
        assigned_device(session, "NOPROFILE001", profile=None)
        for name, profile in (("locked", locked), ("removable", removable)):
            references[name] = build_reference(
                resources.secret_box, ProfileRevision(profile_id=profile.id, revision=profile.revision)
            )
        references["deleted"] = build_reference(resources.secret_box, ProfileRevision(profile_id=9999, revision=1))
    with TestClient(server, raise_server_exceptions=False) as client:
        yield World(client=client, server=server, references=references, tmp_path=tmp_path)
    resources.engine.dispose()


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[World]:
    yield from _world(settings, tmp_path)


def _signed(serial: str = SERIAL, *, identity: DeviceIdentity = DEVICE, **plist: object) -> bytes:
    return sign_machine_info(machine_info_plist(serial=serial, **plist), identity, ca=CA)  # type: ignore[arg-type]


def test_a_device_posting_ber_machine_info_gets_its_signed_profile(world: World) -> None:
    answer = world.post(_signed())
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-apple-aspen-config"
    profile = read_profile(answer.content, trusted=world.authority(), workdir=world.tmp_path / "p")
    check_against_apples_schemas(profile)
    assert profile["PayloadRemovalDisallowed"] is True
    payloads = payloads_by_type(profile)
    assert payloads["com.apple.mdm"][0]["Topic"] == TOPIC
    assert payloads["com.apple.mdm"][0]["ServerURL"] == "https://mdm.example.com/mdm/connect"
    subject = payloads["com.apple.security.scep"][0]["PayloadContent"]["Subject"]
    assert [["O", ORGANIZATION]] in subject and [["2.5.4.5", SERIAL]] in subject
    with resources_of(world.server).session_factory() as session:
        row = session.execute(select(EnrollmentChallenge)).scalar_one()
    assert (row.serial_number, row.udid, row.profile_revision, row.uses_left) == (SERIAL, UDID, 3, 1)


def test_a_removable_profile_installs_removable_with_its_tls_anchors(world: World) -> None:
    answer = world.post(_signed("REMOVABLE01"), profile="removable")
    assert answer.status_code == 200
    profile = read_profile(answer.content, trusted=world.authority(), workdir=world.tmp_path / "p")
    assert "PayloadRemovalDisallowed" not in profile
    roots = [
        x509.load_der_x509_certificate(p["PayloadContent"])
        for p in payloads_by_type(profile)["com.apple.security.root"]
    ]
    assert roots[1:] == [device_ca("TLS").root]  # the anchor that does not parse is left out


def test_der_and_sha256_machine_info_is_accepted_too(world: World) -> None:
    body = sign_machine_info(machine_info_plist(serial=SERIAL), DEVICE, ca=CA, ber=False)
    assert world.post(body).status_code == 200


def test_a_device_killed_after_getting_its_profile_can_ask_again(world: World) -> None:
    assert world.post(_signed()).status_code == 200
    assert world.post(_signed()).status_code == 200
    assert world.challenges() == 2


@pytest.mark.parametrize(
    "serial",
    ["UNKNOWN00001", "EMPTY0000001", "REMOVED00001", "NOPROFILE001"],
)
def test_a_device_apple_did_not_give_this_server_with_a_profile_is_unrecognized(world: World, serial: str) -> None:
    answer = world.post(_signed(serial))
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/xml")
    assert plistlib.loads(answer.content, fmt=plistlib.FMT_XML)["code"] == "com.apple.unrecognized.device"
    assert world.challenges() == 0


def test_a_reference_to_a_deleted_profile_is_unrecognized(world: World) -> None:
    assert world.post(_signed(), profile="deleted").status_code == 403


def _foreign() -> bytes:
    foreign = device_ca("Foreign")
    return sign_machine_info(
        machine_info_plist(serial=SERIAL), issue_device_identity(foreign, "X", key_name="stranger"), ca=foreign
    )


#: A MachineInfo whose serial comes from an entity (the start of every XML entity attack).
ENTITY_PLIST = f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist [<!ENTITY serial "{SERIAL}">]>
<plist version="1.0"><dict><key>UDID</key><string>{UDID}</string><key>SERIAL</key><string>&serial;</string>
<key>PRODUCT</key><string>iPhone14,5</string><key>VERSION</key><string>21A329</string></dict></plist>
""".encode()

HOSTILE = {
    "foreign CA": _foreign,
    "forged device CA": lambda: sign_machine_info(
        machine_info_plist(serial=SERIAL),
        issue_device_identity(device_ca("Test", keys="forger"), UDID, key_name="forger-device"),
        ca=device_ca("Test", keys="forger"),
    ),
    "two signers": lambda: sign_machine_info(
        machine_info_plist(serial=SERIAL),
        DEVICE,
        ca=CA,
        signers=[DEVICE, issue_device_identity(CA, "SECOND", key_name="second")],
    ),
    "wrong digest": lambda: sign_machine_info(
        machine_info_plist(serial=SERIAL), DEVICE, ca=CA, message_digest=b"\x01" * 20
    ),
    "truncated": lambda: _signed()[:-40],
    "ber bomb": lambda: b"\x30\x80" * 30_000,
    "binary plist": lambda: sign_machine_info(
        plistlib.dumps(plistlib.loads(machine_info_plist(serial=SERIAL)), fmt=plistlib.FMT_BINARY), DEVICE, ca=CA
    ),
    "xml entities": lambda: sign_machine_info(ENTITY_PLIST, DEVICE, ca=CA),
    "missing keys": lambda: sign_machine_info(plistlib.dumps({"SERIAL": SERIAL}), DEVICE, ca=CA),
    "empty": lambda: b"",
    "garbage": lambda: b"\x00\xff" * 100,
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_body_is_refused_plainly_and_stores_nothing(world: World, case: str) -> None:
    answer = world.post(HOSTILE[case]())
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert "Traceback" not in answer.text
    assert world.challenges() == 0


def test_an_oversized_body_is_refused_before_it_is_read(world: World) -> None:
    answer = world.post(b"\x30\x80" + b"A" * MAX_BODY_BYTES)
    assert answer.status_code == 413
    assert world.challenges() == 0


@pytest.mark.parametrize("reference", ["x", "A" * 44, "not-a-reference-at-all-but-long-enough-to-try"])
def test_a_reference_pippin_did_not_sign_is_not_found(world: World, reference: str) -> None:
    world.references["forged"] = reference
    assert world.post(_signed(), profile="forged").status_code == 404
    assert world.challenges() == 0


def test_other_methods_are_refused_plainly(world: World) -> None:
    answer = world.client.get(f"/mdm/enroll/{world.references['locked']}")
    assert answer.status_code == 405


def test_without_trust_anchors_the_device_retries_later_and_the_admin_is_told(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for world in _world(settings, tmp_path, anchors=False):
        answer = world.post(_signed())
        assert answer.status_code == 500 and "retry later" in answer.text
        assert "apple.com/certificateauthority" not in answer.text
        assert "PIPPIN_DEVICE_TRUST_ANCHORS_FILE" in caplog.text and "Apple iPhone Device CA" in caplog.text
        assert world.challenges() == 0


def test_without_a_push_certificate_the_device_retries_later_and_the_admin_is_told(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for world in _world(settings, tmp_path, push=False):
        answer = world.post(_signed())
        assert answer.status_code == 500 and "retry later" in answer.text
        assert "push certificate" in caplog.text
        assert world.challenges() == 0


def _require(world: World, version: str | None, profile: str = "Locked") -> None:
    with resources_of(world.server).session_factory() as session, session.begin():
        found = session.scalars(select(DEPProfile).where(DEPProfile.name == profile)).one()
        found.minimum_os_version = version


def _update_required(answer: httpx.Response) -> dict[str, object]:
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    body: dict[str, object] = plistlib.loads(answer.content, fmt=plistlib.FMT_XML)
    assert body["code"] == "com.apple.softwareupdate.required"
    return body


@pytest.mark.parametrize("minimum", ["17.4", "17.0.1", "18"])
def test_an_older_device_that_can_update_is_told_the_version_and_nothing_is_stored(world: World, minimum: str) -> None:
    _require(world, minimum)
    body = _update_required(world.post(_signed(os_version="17.0", can_update=True)))
    assert body["details"] == {"OSVersion": minimum}
    assert world.challenges() == 0


@pytest.mark.parametrize(
    ("os_version", "can_update"),
    [("17.4", True), ("17.4.1", True), ("18.0", True), ("17.0", False), (None, None), (None, True)],
)
def test_a_device_at_the_minimum_or_unable_to_update_enrolls(
    world: World, os_version: str | None, can_update: bool | None
) -> None:
    _require(world, "17.4")
    answer = world.post(_signed(os_version=os_version, can_update=can_update))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-apple-aspen-config"
    assert world.challenges() == 1


def test_a_new_minimum_applies_to_the_revision_the_device_already_has(world: World) -> None:
    """The setting is Pippin's, read when the device asks: the URL Apple gave it before the change is held to it."""
    assert world.post(_signed(os_version="17.0")).status_code == 200
    _require(world, "17.2")
    _update_required(world.post(_signed(os_version="17.0")))
    _require(world, None)
    assert world.post(_signed(os_version="17.0")).status_code == 200
    assert world.challenges() == 2


def test_an_unrecognized_device_is_told_so_before_any_update(world: World) -> None:
    _require(world, "17.4")
    answer = world.post(_signed("UNKNOWN00001", os_version="16.0"))
    assert plistlib.loads(answer.content, fmt=plistlib.FMT_XML)["code"] == "com.apple.unrecognized.device"
