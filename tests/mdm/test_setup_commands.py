"""The enrollment-time commands of a profile as a service (templates, sealing, bounds, audit), and the cost of the
setup problems a page of devices shows. On SQLite and PostgreSQL, with an injected time."""

from __future__ import annotations

import plistlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, select

from pippin.admin.audit import Actor, Interface
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.errors import InvalidInput, NotFound
from pippin.mdm import setup_commands as setup_service
from pippin.mdm.setup_commands import MAX_SETUP_COMMANDS, DeviceNameFacts, check_name_template, render_device_name
from pippin.mdm.setup_release import setup_problems
from pippin.mdm.setup_schemas import SetupCommandCreate, SetupProblemKind, SetupWatch
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import (
    AuditEvent,
    Command,
    CommandStatus,
    DEPProfile,
    Enrollment,
    EnrollmentStatus,
    SetupCommand,
    SetupCommandKind,
    SetupRelease,
)
from tests.mdm.command_samples import profile

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADMIN = Actor(name="ops@example.com", interface=Interface.api, source="192.0.2.7")
NAME = SetupCommandCreate(kind=SetupCommandKind.device_name, template="iPad-{serial}")


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    return SecretBox.from_settings(settings)


@pytest.fixture
def staff(session_factory: SessionFactory) -> str:
    with transaction(session_factory) as session:
        session.add_all([DEPProfile(name="Staff", is_supervised=True), DEPProfile(name="Kiosk", is_supervised=True)])
    return "Staff"


@pytest.mark.parametrize(
    ("template", "facts", "name"),
    [
        ("iPad-{serial}", DeviceNameFacts(serial="F5JM992LF193"), "iPad-F5JM992LF193"),
        ("{model} ({user})", DeviceNameFacts(model="iPhone 15", user="ann"), "iPhone 15 (ann)"),
        ("{asset_tag}", DeviceNameFacts(serial="S1"), "S1"),  # empty: the serial
        ("{asset_tag}", DeviceNameFacts(udid="U1"), "U1"),  # no serial either: the UDID
        ("{{{serial}}}", DeviceNameFacts(serial="S1"), "{S1}"),  # doubled braces are literal
        ("{serial}", DeviceNameFacts(serial="S\u202e1\x00"), "S1"),  # what the device told is made printable
        ("x{serial}", DeviceNameFacts(serial="s" * 300), "x" + "s" * 254),  # Apple's bound
        (
            "{product} {os_version} {udid}",
            DeviceNameFacts(product="iPad2,5", os_version="9.3", udid="U"),
            "iPad2,5 9.3 U",
        ),
    ],
)
def test_a_template_renders_what_pippin_knows(template: str, facts: DeviceNameFacts, name: str) -> None:
    assert render_device_name(check_name_template(template), facts) == name


def test_every_placeholder_is_accepted() -> None:
    template = " ".join("{" + name + "}" for name in setup_service.PLACEHOLDERS)
    assert check_name_template(template) == template


def test_a_profile_is_kept_sealed_and_the_audit_records_no_payload(
    session_factory: SessionFactory, box: SecretBox, staff: str
) -> None:
    with transaction(session_factory) as session:
        data = SetupCommandCreate(kind=SetupCommandKind.install_profile)
        added = setup_service.add_setup_command(
            session, profile_name=staff, data=data, payload=profile(), box=box, actor=ADMIN, now=NOW
        )
    assert (added.label, added.request_type, added.name_template) == ("Wi-Fi", "InstallProfile", None)
    with read_transaction(session_factory) as session:
        stored = session.scalars(select(SetupCommand)).one()
        assert stored.payload_encrypted is not None and b"correct horse" not in stored.payload_encrypted
        assert plistlib.loads(box.decrypt(stored.payload_encrypted))["PayloadDisplayName"] == "Wi-Fi"
        (event_,) = session.scalars(select(AuditEvent)).all()
        assert (event_.action, event_.target, event_.actor) == ("profile.setup_command.add", "Staff", ADMIN.name)
        assert event_.detail == {"id": stored.id, "kind": "install_profile", "label": "Wi-Fi"}


def test_a_profile_takes_a_bounded_number_of_commands(
    session_factory: SessionFactory, box: SecretBox, staff: str
) -> None:
    with transaction(session_factory) as session:
        for _ in range(MAX_SETUP_COMMANDS):
            setup_service.add_setup_command(session, profile_name=staff, data=NAME, box=box, actor=ADMIN, now=NOW)
    with pytest.raises(InvalidInput, match="the most it takes"), transaction(session_factory) as session:
        setup_service.add_setup_command(session, profile_name=staff, data=NAME, box=box, actor=ADMIN, now=NOW)


def test_a_command_is_removed_only_from_its_own_profile(
    session_factory: SessionFactory, box: SecretBox, staff: str
) -> None:
    with transaction(session_factory) as session:
        added = setup_service.add_setup_command(session, profile_name=staff, data=NAME, box=box, actor=ADMIN, now=NOW)
    with pytest.raises(NotFound, match="has no enrollment-time command"), transaction(session_factory) as session:
        setup_service.remove_setup_command(session, profile_name="Kiosk", command_id=added.id, actor=ADMIN, now=NOW)
    with transaction(session_factory) as session:
        setup_service.remove_setup_command(session, profile_name=staff, command_id=added.id, actor=ADMIN, now=NOW)
        assert setup_service.list_setup_commands(session, profile_name=staff) == []


@pytest.mark.parametrize("command_id", [0, -1, 2**31, 2**62])
def test_an_id_no_row_can_have_is_not_found_without_asking_the_database(
    session_factory: SessionFactory, staff: str, command_id: int
) -> None:
    """PostgreSQL's integer column refuses a larger number outright: it must not get that far."""
    with pytest.raises(NotFound, match="has no enrollment-time command"), transaction(session_factory) as session:
        setup_service.remove_setup_command(session, profile_name=staff, command_id=command_id, actor=ADMIN, now=NOW)


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _stuck_fleet(session_factory: SessionFactory, count: int, box: SecretBox) -> list[str]:
    """``count`` enrollments awaiting configuration for an hour, each with one step not yet fetched."""
    udids = [f"UDID-{n:04}" for n in range(count)]
    with transaction(session_factory) as session:
        for udid in udids:
            session.add(Enrollment(udid=udid, status=EnrollmentStatus.enrolled, identity_fingerprint=udid))
        session.flush()
        for udid in udids:
            session.add(
                SetupRelease(
                    udid=udid,
                    identity_fingerprint=udid,
                    started_at=NOW - timedelta(hours=1),
                    steps=[{"uuid": f"C-{udid}", "request_type": "Settings", "label": "iPad-{serial}"}],
                )
            )
            session.add(
                Command(
                    command_uuid=f"C-{udid}",
                    udid=udid,
                    request_type="Settings",
                    status=CommandStatus.queued,
                    created_at=NOW,
                    expires_at=NOW + timedelta(days=1),
                    body_encrypted=box.encrypt(b"<plist/>"),
                    deliveries=0,
                    not_now_count=0,
                )
            )
        session.execute(Enrollment.__table__.update().values(awaiting_configuration=True))
    return udids


def test_the_problems_of_a_page_cost_two_queries_whatever_its_size(
    session_factory: SessionFactory, engine: Engine, box: SecretBox
) -> None:
    udids = _stuck_fleet(session_factory, 60, box)
    watch = SetupWatch(now=NOW, stuck_after=timedelta(minutes=30))
    sizes = {}
    for page in (udids[:5], udids):
        with read_transaction(session_factory) as session, counted(engine) as statements:
            problems = setup_problems(session, page, watch=watch)
        assert set(problems) == set(page)
        sizes[len(page)] = len([s for s in statements if s.lstrip().upper().startswith("SELECT")])
    assert sizes == {5: 2, 60: 2}
    reason = problems[udids[0]].reason
    assert problems[udids[0]].kind is SetupProblemKind.stuck
    assert reason == "Still in Setup Assistant: step 1 (Settings iPad-{serial}) not yet fetched by the device"


def test_a_device_is_stuck_only_past_the_setting(session_factory: SessionFactory, box: SecretBox) -> None:
    (udid,) = _stuck_fleet(session_factory, 1, box)
    with read_transaction(session_factory) as session:
        early = SetupWatch(now=NOW - timedelta(minutes=31), stuck_after=timedelta(minutes=30))
        assert setup_problems(session, [udid], watch=early) == {}
        due = SetupWatch(now=NOW - timedelta(minutes=30), stuck_after=timedelta(minutes=30))
        assert setup_problems(session, [udid], watch=due)[udid].awaiting_since == NOW - timedelta(hours=1)


def test_a_profile_too_large_for_the_queue_once_encoded_is_refused_when_added(
    session_factory: SessionFactory, box: SecretBox, staff: str
) -> None:
    padded = {
        "PayloadType": "com.apple.wifi.managed",
        "PayloadIdentifier": "com.example.wifi.payload",
        "PayloadUUID": "0F6F1C3E-9A52-4D0B-8F57-0C1D2E3F4A5B",
        "PayloadVersion": 1,
        "Note": "x" * 900_000,  # under the profile's own bound; past the queue's once sent as base64 data
    }
    body = profile(padded)
    assert len(body) < 1024 * 1024
    data = SetupCommandCreate(kind=SetupCommandKind.install_profile)
    with pytest.raises(InvalidInput, match="larger than"), transaction(session_factory) as session:
        setup_service.add_setup_command(
            session, profile_name=staff, data=data, payload=body, box=box, actor=ADMIN, now=NOW
        )
    with read_transaction(session_factory) as session:
        assert session.scalars(select(SetupCommand)).all() == []
