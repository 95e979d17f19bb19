"""PUT /mdm/checkin with real captured messages: Authenticate, TokenUpdate, CheckOut and the others, each
authenticated by a test CA's identity; every bad request is refused (400/413, never 401 or 500) and stores nothing."""

from __future__ import annotations

import plistlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from pippin.config import Settings
from pippin.store.models import CheckinMessage, Device, Enrollment, EnrollmentStatus, PushDelivery
from pippin.store.models.push_certificate import PUSH_CERTIFICATE_ID, PushCertificate
from tests.conftest import fixture_path
from tests.device.conftest import NANOMDM_TOPIC, DeviceServer, build_device_server
from tests.mdm.device_identities import NOW, make_authority
from tests.servers import resources_of

UDID = "663b07bb783e9ade1dae4fbb92ea12afc0ce5b69"
SERIAL = "F5JM992LF193"


def capture(name: str) -> bytes:
    return fixture_path("nanomdm", name).read_bytes()


def commandment(name: str, *, udid: str = UDID) -> bytes:
    """A commandment capture, addressed to the nanomdm capture's device and topic (bytes replaced in place)."""
    body = fixture_path("commandment", name).read_bytes()
    body = body.replace(b"com.apple.mgmt.XServer.1c111c11-1c11-1c11-1c11-1c111c111c11", NANOMDM_TOPIC.encode())
    for captured in (b"1c111c111c111c111c111c111c111c111c111c11", b"1111111111111111111111111111111111111111"):
        body = body.replace(captured, udid.encode())
    return body


def message(message_type: str, udid: str = UDID, **fields: object) -> bytes:
    return plistlib.dumps({"MessageType": message_type, "UDID": udid, "Topic": NANOMDM_TOPIC, **fields})


def enrollment(devices: DeviceServer, udid: str = UDID) -> Enrollment:
    with devices.session() as session:
        found = session.get(Enrollment, udid)
        assert found is not None
        session.expunge(found)
        return found


def enroll(devices: DeviceServer, **binding: object):  # type: ignore[no-untyped-def]
    identity = devices.identities.issue(**binding)
    body = capture("Authenticate.1.plist")
    assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 200
    body = capture("TokenUpdate.1.plist")
    assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 200
    return identity


def test_authenticate_binds_the_identity_and_starts_the_enrollment(devices: DeviceServer) -> None:
    identity = devices.identities.issue(serial_number=SERIAL, primary_user_id=7, profile_id=None)
    body = capture("Authenticate.1.plist")
    answer = devices.put("checkin", body, signature=identity.sign(body))
    assert (answer.status_code, answer.content) == (200, b"")
    stored = enrollment(devices)
    assert stored.status is EnrollmentStatus.enrolling
    assert (stored.serial_number, stored.os_version, stored.build_version, stored.product_name) == (
        SERIAL, "9.3.5", "13G36", "iPad2,5",
    )  # fmt: skip
    assert (stored.identity_fingerprint, stored.topic, stored.primary_user_id) == (
        identity.fingerprint, NANOMDM_TOPIC, 7,
    )  # fmt: skip
    assert stored.first_contact_at == stored.last_seen_at == stored.authenticated_at == NOW
    assert devices.identities.records[identity.fingerprint].udid == UDID
    with devices.session() as session:
        raw = session.scalars(select(CheckinMessage)).one()
    assert raw.message_type == "Authenticate" and body not in raw.raw_encrypted
    assert resources_of(devices.client.app).secret_box.decrypt(raw.raw_encrypted) == body  # type: ignore[arg-type]


def test_token_update_enrolls_keeps_the_unlock_token_sealed_and_wakes_the_push_layer(devices: DeviceServer) -> None:
    enroll(devices)
    stored = enrollment(devices)
    assert stored.status is EnrollmentStatus.enrolled and stored.enrolled_at == NOW
    token_update = plistlib.loads(capture("TokenUpdate.1.plist"))
    assert stored.push_token == token_update["Token"].hex()
    assert stored.push_magic == "CEFDF0BD-E342-4A27-8742-E930EA116B0A"
    assert stored.awaiting_configuration is False
    box = resources_of(devices.client.app).secret_box  # type: ignore[arg-type]
    assert stored.unlock_token_encrypted is not None
    assert box.decrypt(stored.unlock_token_encrypted) == token_update["UnlockToken"]
    with devices.session() as session:
        assert session.get(PushDelivery, UDID) is not None


def test_a_later_token_update_without_unlock_token_keeps_it(devices: DeviceServer) -> None:
    identity = enroll(devices)
    sealed = enrollment(devices).unlock_token_encrypted
    devices.clock.advance(hours=1)
    body = message("TokenUpdate", Token=b"\x01" * 32, PushMagic="NEW-MAGIC", AwaitingConfiguration=True)
    assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 200
    stored = enrollment(devices)
    assert (stored.unlock_token_encrypted, stored.push_magic, stored.push_token) == (sealed, "NEW-MAGIC", "01" * 32)
    assert stored.awaiting_configuration is True
    assert stored.enrolled_at == NOW and stored.last_seen_at == NOW + timedelta(hours=1)


def test_check_out_records_the_device_unenrolled(devices: DeviceServer) -> None:
    identity = enroll(devices)
    body = commandment("CheckOut_iOS-11.3.1.xml")
    assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 200
    stored = enrollment(devices)
    assert stored.status is EnrollmentStatus.unenrolled and stored.unenrolled_at == NOW


def test_the_cellular_capture_records_imei_and_meid(devices: DeviceServer) -> None:
    identity = devices.identities.issue()
    body = commandment("Authenticate_iOS-11.3.1-cell.xml")
    assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 200
    stored = enrollment(devices)
    assert (stored.imei, stored.meid, stored.product_name) == ("11 111111 111111 1", "1111111111111", "iPhone7,2")


def test_a_new_authenticate_is_a_re_enrollment(devices: DeviceServer) -> None:
    enroll(devices)
    renewed = devices.identities.issue()
    body = capture("Authenticate.1.plist")
    assert devices.put("checkin", body, signature=renewed.sign(body)).status_code == 200
    stored = enrollment(devices)
    assert stored.status is EnrollmentStatus.enrolling
    assert (stored.identity_fingerprint, stored.push_magic, stored.push_token) == (renewed.fingerprint, None, None)
    assert stored.unlock_token_encrypted is not None  # kept until a TokenUpdate brings another


def test_the_old_identity_cannot_speak_after_a_re_enrollment(devices: DeviceServer) -> None:
    old = enroll(devices)
    renewed = devices.identities.issue()
    body = capture("Authenticate.1.plist")
    devices.put("checkin", body, signature=renewed.sign(body))
    body = capture("TokenUpdate.1.plist")
    assert devices.put("checkin", body, signature=old.sign(body)).status_code == 400


def test_bootstrap_tokens_are_kept_sealed_and_given_back(devices: DeviceServer) -> None:
    identity = enroll(devices)
    get = message("GetBootstrapToken")
    assert devices.put("checkin", get, signature=identity.sign(get)).content == b""
    body = message("SetBootstrapToken", BootstrapToken=b"bootstrap-secret", AwaitingConfiguration=False)
    assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 200
    assert b"bootstrap-secret" not in (enrollment(devices).bootstrap_token_encrypted or b"")
    answer = devices.put("checkin", get, signature=identity.sign(get))
    assert plistlib.loads(answer.content) == {"BootstrapToken": b"bootstrap-secret"}
    body = message("SetBootstrapToken", BootstrapToken=b"")
    devices.put("checkin", body, signature=identity.sign(body))
    assert enrollment(devices).bootstrap_token_encrypted is None


def test_return_to_service_is_off_unless_configured(devices: DeviceServer, settings: Settings) -> None:
    identity = enroll(devices)
    body = message("ReturnToService")
    answer = devices.put("checkin", body, signature=identity.sign(body))
    assert answer.status_code == 200
    assert plistlib.loads(answer.content) == {"ReturnToService": {"Enabled": False}}


def test_return_to_service_when_turned_on_sends_the_bootstrap_token(settings: Settings) -> None:
    devices = build_device_server(settings.model_copy(update={"return_to_service": True}))
    with devices.client:
        identity = enroll(devices)
        body = message("SetBootstrapToken", BootstrapToken=b"bt")
        devices.put("checkin", body, signature=identity.sign(body))
        body = message("ReturnToService")
        answer = devices.put("checkin", body, signature=identity.sign(body))
    assert plistlib.loads(answer.content) == {"ReturnToService": {"Enabled": True, "BootstrapToken": b"bt"}}


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"message_type": "DeclarativeManagement", "Endpoint": "tokens"}, 400),
        ({"message_type": "DeclarativeManagement", "Endpoint": "declaration/configuration/x"}, 404),
        ({"message_type": "UserAuthenticate"}, 410),
        ({"message_type": "GetToken", "TokenServiceType": "com.apple.maid"}, 400),
        ({"message_type": "Something"}, 400),
    ],
)
def test_messages_pippin_does_not_serve_are_answered_clearly(
    devices: DeviceServer, fields: dict[str, str], status: int
) -> None:
    identity = enroll(devices)
    body = message(**fields)  # type: ignore[arg-type]
    answer = devices.put("checkin", body, signature=identity.sign(body))
    assert answer.status_code == status and answer.text


ENTITY = b"""<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY x "Authenticate">]>
<plist version="1.0"><dict><key>MessageType</key><string>&x;</string><key>UDID</key><string>u</string></dict></plist>"""


@pytest.mark.parametrize(
    "case",
    [
        "no-signature", "forged", "foreign", "expired", "revoked", "other-udid", "issued-for-other", "wrong-topic",
        "malformed", "truncated", "oversized", "binary", "entities", "not-a-dict", "no-udid", "enrollment-id",
        "garbage-signature", "token-update-first",
    ],
)  # fmt: skip
def test_bad_check_ins_are_refused_and_store_nothing(devices: DeviceServer, case: str) -> None:
    identity = devices.identities.issue(serial_number=SERIAL)
    body = capture("Authenticate.1.plist")
    signer = identity
    if case == "forged":
        signature = devices.identities.issue().sign(body + b"\n")
    elif case == "foreign":
        signer = devices.identities.record(make_authority("Foreign").issue("d"))
    elif case == "expired":
        devices.clock.advance(days=400)
    elif case == "revoked":
        devices.identities.revoke(identity)
    elif case == "other-udid":
        devices.identities.records[identity.fingerprint] = devices.identities.records[identity.fingerprint].__class__(
            fingerprint=identity.fingerprint, udid="ANOTHER-UDID", revoked_at=None, challenge_id=1
        )
    elif case == "issued-for-other":
        signer = devices.identities.issue(serial_number="OTHERSERIAL")
    elif case == "wrong-topic":
        body = body.replace(NANOMDM_TOPIC.encode(), b"com.apple.mgmt.External.other")
    elif case == "malformed":
        body = body.replace(b"</dict>", b"")
    elif case == "truncated":
        body = body[: len(body) // 2]
    elif case == "oversized":
        body = body.replace(b"<dict>", b"<dict><key>Pad</key><string>" + b"x" * 70_000 + b"</string>")
    elif case == "binary":
        body = plistlib.dumps(plistlib.loads(body), fmt=plistlib.FMT_BINARY)
    elif case == "entities":
        body = ENTITY
    elif case == "not-a-dict":
        body = plistlib.dumps(["Authenticate"])
    elif case == "no-udid":
        body = plistlib.dumps({"MessageType": "Authenticate", "Topic": NANOMDM_TOPIC})
    elif case == "enrollment-id":
        body = plistlib.dumps({"MessageType": "Authenticate", "Topic": NANOMDM_TOPIC, "EnrollmentID": "E"})
    elif case == "token-update-first":
        body = capture("TokenUpdate.1.plist")
    headers_signature = signer.sign(body)
    if case == "forged":
        headers_signature = signature
    elif case == "no-signature":
        headers_signature = None  # type: ignore[assignment]
    elif case == "garbage-signature":
        headers_signature = "bm90IGEgc2lnbmF0dXJl"
    answer = devices.put("checkin", body, signature=headers_signature)
    assert answer.status_code == (413 if case == "oversized" else 400), answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert devices.stored() == (0, 0)
    assert devices.identities.records[identity.fingerprint].udid in (None, "ANOTHER-UDID")


def test_a_device_cannot_replay_its_identity_for_another_udid(devices: DeviceServer) -> None:
    identity = enroll(devices)
    body = message("Authenticate", udid="ANOTHER-DEVICE", SerialNumber=SERIAL)
    answer = devices.put("checkin", body, signature=identity.sign(body))
    assert answer.status_code == 400
    with devices.session() as session:
        assert session.get(Enrollment, "ANOTHER-DEVICE") is None


def test_without_a_push_certificate_authenticate_is_refused(devices: DeviceServer) -> None:
    with devices.session() as session, session.begin():
        session.get_one(PushCertificate, PUSH_CERTIFICATE_ID).topic = None
    identity = devices.identities.issue()
    body = capture("Authenticate.1.plist")
    assert devices.put("checkin", body, signature=identity.sign(body)).status_code == 400
    assert devices.stored() == (0, 0)


def test_only_the_last_messages_are_kept(devices: DeviceServer) -> None:
    identity = enroll(devices)
    get = message("GetBootstrapToken")
    for _ in range(25):
        devices.put("checkin", get, signature=identity.sign(get))
    assert devices.stored() == (1, 20)


def test_idle_at_the_server_url_from_an_enrolled_device_gets_an_empty_answer(devices: DeviceServer) -> None:
    identity = enroll(devices)
    devices.clock.advance(minutes=5)
    idle = plistlib.dumps({"Status": "Idle", "UDID": UDID})
    answer = devices.put("connect", idle, signature=identity.sign(idle))
    assert (answer.status_code, answer.content) == (200, b"")
    assert enrollment(devices).last_seen_at == NOW + timedelta(minutes=5)


def test_a_device_enrolled_before_its_dep_record_arrived_is_tied_to_it_at_its_next_message(
    devices: DeviceServer,
) -> None:
    identity = enroll(devices, serial_number=SERIAL, profile_id=None)
    assert enrollment(devices).device_id is None  # no DEP record yet: listed by UDID and serial alone
    with devices.session() as session, session.begin():
        # What a sync writes when Apple's record of the device arrives later.
        record = Device(serial_number=SERIAL, profile_status="empty", apple_record={})
        session.add(record)
        session.flush()
        record_id = record.id
    idle = plistlib.dumps({"Status": "Idle", "UDID": UDID})
    assert devices.put("connect", idle, signature=identity.sign(idle)).status_code == 200
    assert enrollment(devices).device_id == record_id


def test_the_server_url_refuses_reports_and_devices_not_enrolled(devices: DeviceServer) -> None:
    identity = devices.identities.issue()
    body = capture("Authenticate.1.plist")
    devices.put("checkin", body, signature=identity.sign(body))
    idle = plistlib.dumps({"Status": "Idle", "UDID": UDID})
    assert devices.put("connect", idle, signature=identity.sign(idle)).status_code == 400  # enrolling, not enrolled
    report = plistlib.dumps({"Status": "Acknowledged", "UDID": UDID, "CommandUUID": "c"})
    assert devices.put("connect", report, signature=identity.sign(report)).status_code == 400
    assert devices.put("connect", idle, signature=None).status_code == 400


def _forwarded(devices: DeviceServer, identity, header: str = "X-Client-Cert"):  # type: ignore[no-untyped-def]
    body = capture("Authenticate.1.plist")
    return devices.put("checkin", body, signature=None, **{header: identity.forwarded_pem()})


def test_a_trusted_proxy_may_forward_the_client_certificate(settings: Settings) -> None:
    configured = settings.model_copy(
        update={
            "trusted_client_cert_header": "x-client-cert",
            "trusted_proxies": Settings(trusted_proxies="10.0.0.5").trusted_proxies,
        }  # type: ignore[arg-type]
    )
    devices = build_device_server(configured, peer=("10.0.0.5", 4711))
    with devices.client:
        assert _forwarded(devices, devices.identities.issue()).status_code == 200
        assert enrollment(devices).status is EnrollmentStatus.enrolling


def test_a_forwarded_certificate_from_any_other_peer_is_ignored(settings: Settings) -> None:
    configured = settings.model_copy(
        update={
            "trusted_client_cert_header": "x-client-cert",
            "trusted_proxies": Settings(trusted_proxies="10.0.0.5").trusted_proxies,
        }  # type: ignore[arg-type]
    )
    devices = build_device_server(configured, peer=("10.9.9.9", 4711))
    with devices.client:
        assert _forwarded(devices, devices.identities.issue()).status_code == 400
        assert devices.stored() == (0, 0)
