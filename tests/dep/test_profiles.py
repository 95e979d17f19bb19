"""Enrollment profiles in Pippin: Apple's rules checked before anything is stored, revisions, defaults, deletion."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep import profiles
from pippin.dep.enrollment_reference import ProfileRevision, read_reference
from pippin.dep.profile_schemas import ProfileCreate, ProfileUpdate
from pippin.dep.setup_panes import PANES, get_pane, normalize_skip_keys
from pippin.errors import Conflict, InvalidInput, NotFound
from pippin.store.models import AssignmentStatus, DEPProfile, DEPToken, Device
from tests.actors import TEST_ACTOR

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def certificate(common_name: str = "Pippin Test CA") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0 - timedelta(days=1))
        .not_valid_after(T0 + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


def create(session: Session, settings: Settings, **fields: Any) -> Any:
    return profiles.create_profile(
        session, data=ProfileCreate(**{"name": "Staff iPhones", **fields}), settings=settings, actor=TEST_ACTOR
    )


def count_profiles(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(DEPProfile)) or 0


def test_a_profile_keeps_every_field_and_shows_every_pane(session: Session, settings: Settings) -> None:
    cert = certificate()
    read = create(
        session,
        settings,
        description="Shop floor phones",
        user_affinity="with_user",
        supervised=True,
        locked=True,
        mandatory=True,
        allow_pairing=False,
        await_device_configured=True,
        department="IT",
        support_phone="+46 8 123 456",
        support_email="help@example.com",
        org_magic="42",
        language="SV",
        region="se",
        anchor_certs=[cert.public_bytes(Encoding.PEM).decode()],
        skip_setup_items=["siri", "Passcode", "Location Services", "Siri"],
    )
    assert (read.revision, read.locked, read.supervised, read.mandatory, read.allow_pairing) == (
        1,
        True,
        True,
        True,
        False,
    )
    assert (read.language, read.region, read.support_phone) == ("sv", "SE", "+46 8 123 456")
    assert read.skip_setup_items == ["Location", "Passcode", "Siri"]  # Apple's spelling, catalogue order, no repeats
    assert len(read.setup_panes) == len(PANES)
    shown = {pane.key: pane.shown for pane in read.setup_panes}
    assert shown["Siri"] is False and shown["Passcode"] is False and shown["Welcome"] is True
    assert read.anchor_certs[0].subject == "CN=Pippin Test CA"
    assert read.url == "http://127.0.0.1:8000/mdm/enroll"
    assert read.configuration_web_url == "http://127.0.0.1:8000/enroll/web"

    box = SecretBox.from_settings(settings)
    stored = profiles.get_profile(session, name="Staff iPhones")
    wire = profiles.apple_profile(stored, settings=settings, box=box).to_wire()
    reference = wire["url"].removeprefix("http://127.0.0.1:8000/mdm/enroll/")
    assert read_reference(box, reference) == ProfileRevision(profile_id=stored.id, revision=1)
    assert wire["configuration_web_url"] == f"http://127.0.0.1:8000/enroll/web/{reference}"
    assert wire["is_mdm_removable"] is False and wire["is_supervised"] is True and wire["allow_pairing"] is False
    assert wire["anchor_certs"] == [base64.b64encode(cert.public_bytes(Encoding.DER)).decode()]
    assert wire["skip_setup_items"] == ["Location", "Passcode", "Siri"]
    assert "description" not in wire  # Pippin's note to admins, not Apple's


def test_without_user_affinity_there_is_no_sign_in_page(session: Session, settings: Settings) -> None:
    read = create(session, settings)
    assert read.configuration_web_url is None
    box = SecretBox.from_settings(settings)
    wire = profiles.apple_profile(profiles.get_profile(session, name="Staff iPhones"), settings=settings, box=box)
    assert "configuration_web_url" not in wire.to_wire()
    wire = wire.to_wire()
    assert wire["is_mdm_removable"] is True  # written even when it is Apple's default


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"name": "x" * 126}, "CONFIG_NAME_INVALID"),
        ({"name": "   "}, "CONFIG_NAME_INVALID"),
        ({"department": "d" * 126}, "DEPARTMENT_INVALID"),
        ({"support_phone": "1" * 51}, "SUPPORT_PHONE_INVALID"),
        ({"support_email": "a" * 245 + "@x.com"}, "SUPPORT_EMAIL_INVALID"),
        ({"support_email": "not an address"}, "SUPPORT_EMAIL_INVALID"),
        ({"org_magic": "m" * 257}, "MAGIC_INVALID"),
        ({"locked": True}, "FLAGS_INVALID"),
        ({"language": "english"}, "LOCALE_INVALID"),
        ({"region": "S3"}, "LOCALE_INVALID"),
    ],
)
def test_apple_rules_are_checked_first_and_named(
    session: Session, settings: Settings, fields: dict[str, Any], rule: str
) -> None:
    with pytest.raises(InvalidInput, match=rule):
        create(session, settings, **fields)
    assert count_profiles(session) == 0


def test_limits_are_inclusive(session: Session, settings: Settings) -> None:
    read = create(
        session,
        settings,
        name="n" * 125,
        department="d" * 125,
        support_phone="1" * 50,
        support_email="a" * 244 + "@x.com",
        org_magic="m" * 256,
    )
    assert len(read.name) == 125


@pytest.mark.parametrize(
    "value",
    [
        "not a certificate",
        base64.b64encode(b"\x30\x03\x02\x01\x01").decode(),  # DER, but no certificate
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        "x" * 70_000,
    ],
)
def test_malformed_anchor_certificates_are_refused(session: Session, settings: Settings, value: str) -> None:
    with pytest.raises(InvalidInput, match="Anchor certificate 1"):
        create(session, settings, anchor_certs=[value])
    assert count_profiles(session) == 0


def test_anchor_certificates_as_base64_der_and_pem_bundles(session: Session, settings: Settings) -> None:
    first, second = certificate("One"), certificate("Two")
    bundle = first.public_bytes(Encoding.PEM).decode() + second.public_bytes(Encoding.PEM).decode()
    der = base64.b64encode(first.public_bytes(Encoding.DER)).decode()
    read = create(session, settings, anchor_certs=[bundle, der])
    assert [cert.subject for cert in read.anchor_certs] == ["CN=One", "CN=Two"]


def test_unknown_panes_are_refused_with_a_suggestion(session: Session, settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="Did you mean Passcode"):
        create(session, settings, skip_setup_items=["Pascode"])
    with pytest.raises(InvalidInput, match="not a Setup Assistant pane"):
        get_pane("Registration")  # legacy, no longer Apple's
    assert count_profiles(session) == 0
    assert normalize_skip_keys(["tos", "Terms and conditions", "TOS"]) == ["TOS"]


def test_hostile_text_is_refused(session: Session, settings: Settings) -> None:
    with pytest.raises(ValidationError, match="control, format or separator characters"):
        create(session, settings, department="IT\x00\nDROP")
    # The service holds the same rule for a caller that builds the input unchecked.
    for field, value in (("department", "IT\x00"), ("name", "Staff\u202e"), ("anchor_certs", ["a\x00"])):
        unchecked = ProfileCreate.model_construct(**{"name": "Staff iPhones", field: value})
        with pytest.raises(InvalidInput, match="control, format or separator characters"):
            profiles.create_profile(session, data=unchecked, settings=settings, actor=TEST_ACTOR)
    with pytest.raises(InvalidInput, match="cannot contain '/'"):
        profiles.create_profile(
            session, data=ProfileCreate.model_construct(name="a/b"), settings=settings, actor=TEST_ACTOR
        )
    for bad_url in ("javascript:alert(1)", "https://" + "a" * 2000 + ".example", "http://exa mple.com"):
        with pytest.raises(InvalidInput, match="CONFIG_URL_INVALID"):
            create(session, settings.model_copy(update={"server_url": bad_url}))
    assert count_profiles(session) == 0


def test_names_are_unique(session: Session, settings: Settings) -> None:
    create(session, settings)
    with pytest.raises(Conflict, match="already exists"):
        create(session, settings)


def test_only_changes_apple_sees_raise_the_revision_and_requeue_devices(session: Session, settings: Settings) -> None:
    create(session, settings)
    profile = profiles.get_profile(session, name="Staff iPhones")
    token = DEPToken(name="acme", status="ok")
    session.add(token)
    session.flush()
    statuses = ["assigned", "pending", "failed", "not_accessible"]
    for index, status in enumerate(statuses):
        session.add(
            Device(
                serial_number=f"S{index}",
                token_id=token.id,
                assigned_profile_id=profile.id,
                assigned_revision=1,
                assignment_status=status,
                assignment_retry_at=T0 + timedelta(hours=20) if status == "failed" else None,
            )
        )
    session.flush()

    read = profiles.update_profile(
        session,
        name="Staff iPhones",
        changes=ProfileUpdate(description="only for admins"),
        settings=settings,
        actor=TEST_ACTOR,
    )
    assert read.revision == 1
    read = profiles.update_profile(
        session,
        name="Staff iPhones",
        changes=ProfileUpdate(department="Sales"),
        settings=settings,
        now=T0,
        actor=TEST_ACTOR,
    )
    assert read.revision == 2
    rows = {d.serial_number: d for d in session.scalars(select(Device).execution_options(populate_existing=True))}
    assert {serial: d.assigned_revision for serial, d in rows.items()} == dict.fromkeys(rows, 2)
    assert rows["S0"].assignment_status == AssignmentStatus.pending  # assigned the old revision: send the new one
    assert rows["S2"].assignment_status == AssignmentStatus.failed  # Apple's 24 hours still hold
    assert rows["S2"].assignment_retry_at == T0 + timedelta(hours=20)
    assert rows["S3"].assignment_status == AssignmentStatus.not_accessible
    assert read.devices.pending == 2

    same = profiles.update_profile(
        session, name="Staff iPhones", changes=ProfileUpdate(department="Sales"), settings=settings, actor=TEST_ACTOR
    )
    assert same.revision == 2  # nothing changed, nothing to define again


def test_a_bad_edit_changes_nothing(session: Session, settings: Settings) -> None:
    create(session, settings, supervised=True, locked=True)
    with pytest.raises(InvalidInput, match="FLAGS_INVALID"):
        profiles.update_profile(
            session, name="Staff iPhones", changes=ProfileUpdate(supervised=False), settings=settings, actor=TEST_ACTOR
        )
    with pytest.raises(InvalidInput, match="cannot be null"):
        profiles.update_profile(
            session, name="Staff iPhones", changes=ProfileUpdate(name=None), settings=settings, actor=TEST_ACTOR
        )
    read = profiles.read_profile(session, name="Staff iPhones", settings=settings)
    assert (read.revision, read.supervised, read.locked) == (1, True, True)


def test_unknown_profiles_are_not_found(session: Session, settings: Settings) -> None:
    with pytest.raises(NotFound, match="pippin profiles list"):
        profiles.read_profile(session, name="nope", settings=settings)
    with pytest.raises(NotFound):
        profiles.delete_profile(session, name="x" * 10_000, actor=TEST_ACTOR)


def test_a_profile_in_use_cannot_be_deleted(session: Session, settings: Settings) -> None:
    create(session, settings)
    profile = profiles.get_profile(session, name="Staff iPhones")
    token = DEPToken(name="acme", status="ok")
    session.add(token)
    session.flush()
    profiles.set_default_profile(session, token_name=token.name, profile_name=profile.name, actor=TEST_ACTOR)
    assert profiles.read_profile(session, name="Staff iPhones", settings=settings).default_for_tokens == ["acme"]
    with pytest.raises(Conflict, match="default of token"):
        profiles.delete_profile(session, name="Staff iPhones", actor=TEST_ACTOR)
    profiles.set_default_profile(session, token_name=token.name, profile_name=None, actor=TEST_ACTOR)
    session.add(Device(serial_number="S1", token_id=token.id, assigned_profile_id=profile.id, assigned_revision=1))
    session.flush()
    with pytest.raises(Conflict, match="1 devices"):
        profiles.delete_profile(session, name="Staff iPhones", actor=TEST_ACTOR)
    session.execute(Device.__table__.delete())
    profiles.delete_profile(session, name="Staff iPhones", actor=TEST_ACTOR)
    assert count_profiles(session) == 0


# --- the minimum OS version: Pippin's own policy, never Apple's ----------------------------------------------


def test_the_minimum_os_version_is_kept_and_never_sent_to_apple(session: Session, settings: Settings) -> None:
    read = create(session, settings, minimum_os_version=" 17.4 ")
    assert read.minimum_os_version == "17.4"
    stored = profiles.get_profile(session, name="Staff iPhones")
    assert stored.minimum_os_version == "17.4"
    wire = profiles.apple_profile(stored, settings=settings, box=SecretBox.from_settings(settings)).to_wire()
    assert not any("os" in key.lower().split("_") or "version" in key.lower() for key in wire)
    assert "17.4" not in repr(wire)


@pytest.mark.parametrize("version", ["0", "17", "17.4", "17.4.1", "999.999.999", "26.0.0"])
def test_minimum_os_versions_of_one_to_three_numbers_are_taken(
    session: Session, settings: Settings, version: str
) -> None:
    assert create(session, settings, minimum_os_version=version).minimum_os_version == version


@pytest.mark.parametrize(
    "version",
    [
        "17.",
        ".4",
        "17..4",
        "17.4.1.2",
        "1000",
        "17.1000",
        "017",
        "17.04",
        "17.4a",
        "v17.4",
        "iOS 17.4",
        "17,4",
        "17 .4",
        "-1",
        "+17",
        "1e3",
        "0x11",
        "\u0661\u0667.\u0664",  # Arabic-Indic digits: int() reads them, the device never sends them
        "\uff11\uff17",  # fullwidth digits
        "<script>alert(1)</script>",
        "17.4; DROP TABLE enrollment_profiles",
        "1" * 10_000,
    ],
)
def test_a_malformed_minimum_os_version_is_refused_naming_the_field(
    session: Session, settings: Settings, version: str
) -> None:
    with pytest.raises(InvalidInput, match="minimum OS version") as refused:
        create(session, settings, minimum_os_version=version)
    with pytest.raises(InvalidInput) as other:
        profiles.check_minimum_os_version("x")
    assert refused.value.message == other.value.message  # the same words for every value: no input echoed
    assert count_profiles(session) == 0


def test_hostile_characters_in_the_minimum_os_version_are_refused(session: Session, settings: Settings) -> None:
    for value in ("17.4\x00", "17.4\n", "17\u202e.4", "17.4\u2028"):
        with pytest.raises(ValidationError, match="control, format or separator characters"):
            create(session, settings, minimum_os_version=value)
        unchecked = ProfileCreate.model_construct(name="Staff iPhones", minimum_os_version=value)
        with pytest.raises(InvalidInput, match="control, format or separator characters"):
            profiles.create_profile(session, data=unchecked, settings=settings, actor=TEST_ACTOR)
    assert count_profiles(session) == 0


def test_changing_only_the_minimum_os_version_keeps_the_revision_and_the_devices(
    session: Session, settings: Settings
) -> None:
    create(session, settings)
    profile = profiles.get_profile(session, name="Staff iPhones")
    token = DEPToken(name="acme", status="ok")
    session.add(token)
    session.flush()
    session.add(
        Device(
            serial_number="S0",
            token_id=token.id,
            assigned_profile_id=profile.id,
            assigned_revision=1,
            assignment_status="assigned",
        )
    )
    session.flush()

    def edit(**changes: Any) -> Any:
        return profiles.update_profile(
            session, name="Staff iPhones", changes=ProfileUpdate(**changes), settings=settings, actor=TEST_ACTOR
        )

    assert (edit(minimum_os_version="17.4").revision, edit(minimum_os_version="18").revision) == (1, 1)
    assert profiles.read_profile(session, name="Staff iPhones", settings=settings).minimum_os_version == "18"
    cleared = edit(minimum_os_version=None)
    assert (cleared.revision, cleared.minimum_os_version) == (1, None)
    assert edit(minimum_os_version="").minimum_os_version is None  # empty text clears, as for every optional text
    device = session.scalars(select(Device).execution_options(populate_existing=True)).one()
    assert (device.assignment_status, device.assigned_revision) == (AssignmentStatus.assigned, 1)
    both = edit(minimum_os_version="17.4", department="Sales")
    assert (both.revision, both.minimum_os_version) == (2, "17.4")  # the department is Apple's: a new revision


def test_a_malformed_minimum_os_version_edit_changes_nothing(session: Session, settings: Settings) -> None:
    create(session, settings, minimum_os_version="17.4")
    with pytest.raises(InvalidInput, match="minimum OS version"):
        profiles.update_profile(
            session,
            name="Staff iPhones",
            changes=ProfileUpdate(minimum_os_version="17.4.1.2", department="Sales"),
            settings=settings,
            actor=TEST_ACTOR,
        )
    read = profiles.read_profile(session, name="Staff iPhones", settings=settings)
    assert (read.revision, read.minimum_os_version, read.department) == (1, "17.4", None)
