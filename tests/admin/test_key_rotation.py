"""Rotating the master key, against the simulated Apple, on SQLite and PostgreSQL: every secret is sealed anew,
the old key opens none of them, syncs go on, the enrollment URLs Apple holds still verify, and a failure half
way leaves the old key working with nothing changed."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.admin.key_rotation import rotate_master_key
from pippin.admin.master_key import MasterKeyMismatch, open_secret_box
from pippin.config import Settings
from pippin.crypto.keys import generate_private_key, seal_private_key
from pippin.crypto.secrets import SIGNING_PURPOSES, SecretBox, encode_master_key
from pippin.dep import token as token_service
from pippin.dep.enrollment_reference import ProfileRevision, read_reference
from pippin.errors import ConfigurationError, InvalidInput
from pippin.pki.server_identity import ensure_server_identity
from pippin.push import request as request_service
from pippin.push import vendor as vendor_service
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import (
    PUSH_CERTIFICATE_ID,
    ApprovalStatus,
    AuditEvent,
    CheckinMessage,
    Command,
    CommandApproval,
    CommandStatus,
    DEPProfile,
    DEPToken,
    Enrollment,
    EnrollmentLink,
    EnrollmentStatus,
    MasterKeyCheck,
    ProfileDefinition,
    PushCertificate,
    SetupCommand,
    SetupCommandKind,
    WebhookEvent,
    WebhookEventStatus,
    utcnow,
)
from pippin.store.sealed import SEALED_COLUMNS
from tests.actors import TEST_ACTOR
from tests.crypto.openssl_tokens import pooled_key_generator
from tests.dep.test_assignment_sim import Env, create
from tests.push.apple_ca import issue_vendor_certificate, pem
from tests.simulator import RunningSimulator


def sealed_values(factory: SessionFactory) -> dict[str, list[bytes]]:
    with read_transaction(factory) as session:
        return {
            f"{column.class_.__tablename__}.{column.key}": [
                value for value in session.scalars(select(column).order_by(column)) if value is not None
            ]
            for column in SEALED_COLUMNS
        }


def with_key(settings: Settings, key: bytes) -> Settings:
    return settings.model_copy(update={"secret_key": Settings(secret_key=encode_master_key(key)).secret_key})


@pytest.fixture
def world(session_factory: SessionFactory, settings: Settings, sim: RunningSimulator) -> Env:
    """A token syncing, a pending key pair, and a profile defined at Apple with a signed enrollment URL."""
    env = Env(session_factory, settings, sim)
    env.box = open_secret_box(env.factory, settings=env.settings)
    with transaction(env.factory) as session:
        token_service.create_keypair(
            session, name="acme", box=env.box, actor=TEST_ACTOR, generate_key=pooled_key_generator()
        )
        token = session.scalars(select(DEPToken)).one()
        token.private_key_encrypted = seal_private_key(pooled_key_generator()(), env.box)  # the key Apple has
        add_push_secrets(session, env.box)
        # The SCEP CA and the profile-signing identity, both sealed.
        ensure_server_identity(session, box=env.box, generate_key=pooled_key_generator(), now=utcnow())
        add_enrollment_secrets(session, env.box)
    create(env)
    with transaction(env.factory) as session:
        add_setup_command_secret(session, env.box)
    env.seed(3)
    env.sync()
    env.queue(all_unassigned=True)
    assert env.run().assigned == 3
    return env


def add_push_secrets(session: Session, box: SecretBox) -> None:
    """The push certificate's keys (active and pending) and the vendor certificate's, all sealed."""
    vendor_key = generate_private_key()
    vendor_service.import_vendor_certificate(
        session,
        certificate=pem(issue_vendor_certificate(vendor_key)),
        key=vendor_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
        box=box,
        actor=TEST_ACTOR,
    )
    request_service.create_request(session, box=box, actor=TEST_ACTOR, generate_key=pooled_key_generator())
    push = session.get(PushCertificate, PUSH_CERTIFICATE_ID)
    assert push is not None
    push.private_key_encrypted = seal_private_key(pooled_key_generator()(), box)  # an active certificate's key


def add_enrollment_secrets(session: Session, box: SecretBox) -> None:
    """An enrolled device's UnlockToken and bootstrap token, one raw check-in message and a manual enrollment
    link's challenge: all sealed."""
    session.add(
        Enrollment(
            udid="UDID-ROTATED",
            status=EnrollmentStatus.enrolled,
            unlock_token_encrypted=box.encrypt(b"unlock token"),
            bootstrap_token_encrypted=box.encrypt(b"bootstrap token"),
        )
    )
    session.flush()
    session.add(
        CheckinMessage(
            udid="UDID-ROTATED",
            message_type="TokenUpdate",
            received_at=utcnow(),
            identity_fingerprint="0" * 64,
            raw_encrypted=box.encrypt(b"<plist/>"),
        )
    )
    # A manual enrollment link keeps its SCEP challenge sealed, to serve its profile again.
    session.add(
        EnrollmentLink(
            token_sha256="1" * 64,
            uses=5,
            expires_at=utcnow() + timedelta(days=7),
            created_by="ann@example.com",
            challenge_encrypted=box.encrypt(b"challenge"),
        )
    )
    # A webhook event waiting to be posted carries the raw message, sealed.
    session.add(
        WebhookEvent(
            event_id="0f6f1c3e-9a52-4d0b-8f57-0c1d2e3f4a5b",
            topic="mdm.TokenUpdate",
            udid="UDID-ROTATED",
            created_at=utcnow(),
            body_encrypted=box.encrypt(b'{"topic":"mdm.TokenUpdate"}'),
            status=WebhookEventStatus.pending,
            attempts=0,
            next_attempt_at=utcnow(),
        )
    )
    # An answered command keeps its body and the device's raw answer sealed; a bulk erase waiting for a second
    # admin keeps its payload sealed.
    session.add(
        Command(
            command_uuid="5d1b7a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
            udid="UDID-ROTATED",
            request_type="DeviceInformation",
            status=CommandStatus.acknowledged,
            created_at=utcnow(),
            expires_at=utcnow() + timedelta(days=30),
            body_encrypted=box.encrypt(b"<plist/>"),
            answer_encrypted=box.encrypt(b"<plist/>"),
        )
    )
    session.add(
        CommandApproval(
            request_type="EraseDevice",
            payload_encrypted=box.encrypt(b"{}"),
            selection="state=enrolled",
            devices=1,
            status=ApprovalStatus.pending,
            requested_by="ann@example.com",
            requested_via="cli",
            requested_at=utcnow(),
            expires_at=utcnow() + timedelta(days=1),
            bulk_id="8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        )
    )


def add_setup_command_secret(session: Session, box: SecretBox) -> None:
    """The profile's enrollment-time command keeps its .mobileconfig (a Wi-Fi password) sealed."""
    session.add(
        SetupCommand(
            profile_id=session.scalars(select(DEPProfile.id)).one(),
            kind=SetupCommandKind.install_profile,
            label="Wi-Fi",
            payload_encrypted=box.encrypt(b"<plist/>"),
            created_at=utcnow(),
        )
    )


def enrollment_reference(env: Env) -> tuple[str, ProfileRevision]:
    with read_transaction(env.factory) as session:
        definition = session.scalars(select(ProfileDefinition)).one()
        profile = session.scalars(select(DEPProfile)).one()
        assert definition.enrollment_url is not None
        return definition.enrollment_url.rsplit("/", 1)[1], ProfileRevision(profile.id, profile.revision)


def test_rotation_seals_every_secret_anew_and_syncs_and_enrollment_urls_still_work(world: Env) -> None:
    old_box = world.box
    before = sealed_values(world.factory)
    assert all(before.values()), before  # every kind of secret is there to rotate
    reference, target = enrollment_reference(world)
    assert read_reference(old_box, reference) == target
    new_key = os.urandom(32)

    with transaction(world.factory) as session:
        rotation = rotate_master_key(session, box=old_box, new_box=SecretBox(new_key), actor=TEST_ACTOR)
    assert rotation.secrets == sum(len(values) for values in before.values())
    assert (rotation.old_fingerprint, rotation.new_fingerprint) == (old_box.fingerprint, SecretBox(new_key).fingerprint)

    after = sealed_values(world.factory)
    new_box = open_secret_box(world.factory, settings=with_key(world.settings, new_key))
    for column, values in after.items():
        assert len(values) == len(before[column]) and not set(values) & set(before[column]), column
        for value in values:
            with pytest.raises(ConfigurationError, match="different master key"):
                old_box.decrypt(value)
        assert sorted(new_box.decrypt(v) for v in values) == sorted(old_box.decrypt(v) for v in before[column])
    assert read_reference(new_box, reference) == target  # the URL Apple holds still verifies

    with pytest.raises(MasterKeyMismatch):
        open_secret_box(world.factory, settings=world.settings)  # the old key, from PIPPIN_SECRET_KEY
    world.box = new_box
    world.sync()
    with read_transaction(world.factory) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "master_key.rotate")).one()
        assert (event.actor, event.interface, event.source) == (TEST_ACTOR.name, "cli", TEST_ACTOR.source)
        assert event.detail["secrets"] == rotation.secrets
        check = session.get(MasterKeyCheck, 1)
        assert check is not None and check.rotated_at is not None and new_box.matches(check.check_value)


def test_a_failure_half_way_through_rotation_leaves_the_old_key_working(world: Env) -> None:
    before = sealed_values(world.factory)
    reference, target = enrollment_reference(world)

    def fail_at_the_third(count: int) -> None:
        if count == 3:
            raise RuntimeError("the machine went down")

    new_key = os.urandom(32)
    with pytest.raises(RuntimeError), transaction(world.factory) as session:
        rotate_master_key(
            session, box=world.box, new_box=SecretBox(new_key), actor=TEST_ACTOR, progress=fail_at_the_third
        )
    assert sealed_values(world.factory) == before
    box = open_secret_box(world.factory, settings=world.settings)
    assert read_reference(box, reference) == target
    with pytest.raises(MasterKeyMismatch):
        open_secret_box(world.factory, settings=with_key(world.settings, new_key))
    world.box = box
    world.sync()
    with read_transaction(world.factory) as session:
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "master_key.rotate")).all() == []


def test_rotating_to_the_key_in_use_or_from_another_key_is_refused(world: Env) -> None:
    before = sealed_values(world.factory)
    attempts: list[dict[str, Any]] = [
        {"box": world.box, "new_box": world.box},
        {"box": SecretBox(os.urandom(32)), "new_box": SecretBox(os.urandom(32))},
    ]
    for attempt, error in zip(attempts, (InvalidInput, MasterKeyMismatch), strict=True):
        with pytest.raises(error), transaction(world.factory) as session:
            rotate_master_key(session, actor=TEST_ACTOR, **attempt)
    assert sealed_values(world.factory) == before


def keypair_with(env: Env, box: SecretBox, name: str) -> None:
    with transaction(env.factory) as session:
        token_service.create_keypair(session, name=name, box=box, actor=TEST_ACTOR, generate_key=pooled_key_generator())


def test_a_secret_sealed_just_before_a_rotation_is_sealed_again_by_it(world: Env) -> None:
    """The rotation waits for a transaction that confirmed the old key, then seals its secret too."""
    old_box, new_key = world.box, os.urandom(32)
    confirmed, release = threading.Event(), threading.Event()

    def seal_with_the_old_key() -> None:
        with transaction(world.factory) as session:
            token_service.create_keypair(
                session, name="beta", box=old_box, actor=TEST_ACTOR, generate_key=pooled_key_generator()
            )
            confirmed.set()
            release.wait()

    def rotate() -> None:
        with transaction(world.factory) as session:
            rotate_master_key(session, box=old_box, new_box=SecretBox(new_key), actor=TEST_ACTOR)

    sealing = threading.Thread(target=seal_with_the_old_key)
    sealing.start()
    confirmed.wait()
    rotating = threading.Thread(target=rotate)
    rotating.start()
    release.set()
    sealing.join()
    rotating.join()
    new_box = open_secret_box(world.factory, settings=with_key(world.settings, new_key))
    values = [value for column in sealed_values(world.factory).values() for value in column]
    # The four DEP secrets (acme's and beta's), the three push keys (add_push_secrets), the SCEP CA's and the
    # profile-signing identity's keys, the eight enrollment secrets (add_enrollment_secrets), the setup command's
    # profile (add_setup_command_secret), the signing keys.
    assert len(values) == 4 + 3 + 2 + 8 + 1 + len(SIGNING_PURPOSES) and all(new_box.decrypt(value) for value in values)


def test_a_process_that_held_the_old_key_stores_nothing_once_the_rotation_committed(world: Env) -> None:
    old_box, new_key = world.box, os.urandom(32)
    rotated, release = threading.Event(), threading.Event()
    refused: list[BaseException] = []

    def rotate_and_hold() -> None:
        with transaction(world.factory) as session:
            rotate_master_key(session, box=old_box, new_box=SecretBox(new_key), actor=TEST_ACTOR)
            rotated.set()
            release.wait()

    def seal_with_the_old_key() -> None:
        try:
            keypair_with(world, old_box, "beta")
        except MasterKeyMismatch as error:
            refused.append(error)

    rotating = threading.Thread(target=rotate_and_hold)
    rotating.start()
    rotated.wait()
    sealing = threading.Thread(target=seal_with_the_old_key)
    sealing.start()
    release.set()
    rotating.join()
    sealing.join()
    assert len(refused) == 1 and "changed" in str(refused[0])
    with read_transaction(world.factory) as session:
        assert session.scalars(select(DEPToken.name)).all() == ["acme"]
