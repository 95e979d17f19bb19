"""Profiles and their assignment against the simulated Apple over HTTP: what Apple stores is what the admin set,
every device ends in the right state through faults, and Apple's clock decides the retries."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep import assignment, assignment_runner, profiles
from pippin.dep.assignment_runner import ProfileAPI, ProfileClientFactory
from pippin.dep.client import DEPClient, OAuthCredentials
from pippin.dep.enrollment_reference import ProfileRevision, build_reference
from pippin.dep.profile_schemas import ProfileCreate, ProfileUpdate
from pippin.dep.sync_and_assign import sync_and_assign_now
from pippin.dep.token import dep_client_factory
from pippin.dep.wire import AssignProfileResult, DefineProfileResult, DeviceDetail, Profile
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import DEPProfile, DEPToken, Device, ProfileDefinition
from tests.actors import TEST_ACTOR
from tests.dep.test_profiles import certificate
from tests.sim.apple import create_test_server, seed_devices
from tests.simulator import RunningSimulator


class Recorder:
    """A real DEP client that remembers which serials Apple accepted, to prove none is accepted twice."""

    def __init__(self, inner: DEPClient) -> None:
        self.inner = inner
        self.accepted: Counter[str] = Counter()
        self.looked_up: list[str] = []
        self.calls = 0

    def define_profile(self, profile: Profile) -> DefineProfileResult:
        self.calls += 1
        return self.inner.define_profile(profile)

    def assign_profile(self, *, profile_uuid: str, serials: Sequence[str]) -> AssignProfileResult:
        self.calls += 1
        result = self.inner.assign_profile(profile_uuid=profile_uuid, serials=serials)
        self.accepted.update(serial for serial, status in result.devices.items() if status == "SUCCESS")
        return result

    def device_details(self, serials: Sequence[str]) -> dict[str, DeviceDetail]:
        self.calls += 1
        self.looked_up.extend(serials)
        return self.inner.device_details(serials)

    def close(self) -> None:
        self.inner.close()


class Env:
    """Pippin connected to a simulated MDM server: settings, the secret box, a token and its devices."""

    def __init__(self, factory: SessionFactory, settings: Settings, sim: RunningSimulator) -> None:
        self.factory, self.sim = factory, sim
        self.settings = settings.model_copy(
            update={"dep_base_url": sim.base_url, "dep_max_retries": 3, "dep_timeout": 10.0}
        )
        self.box = SecretBox.from_settings(self.settings)
        self.server = create_test_server(sim.state)
        self.credentials = self.add_token("acme", self.server)
        self.recorders: list[Recorder] = []

    def add_token(self, name: str, server: Any) -> dict[str, str]:
        """Store a token in good standing for the simulated MDM server ``server``; returns its OAuth values."""
        credentials = {
            "consumer_key": server.consumer_key,
            "consumer_secret": server.consumer_secret,
            "access_token": server.access_token,
            "access_secret": server.access_secret,
        }
        with transaction(self.factory) as session:
            session.add(
                DEPToken(
                    name=name,
                    status="ok",
                    server_uuid=server.server_uuid,
                    credentials_encrypted=self.box.encrypt(json.dumps(credentials).encode()),
                    expires_at=self.sim.state.clock.now() + timedelta(days=300),
                )
            )
        return credentials

    def now(self) -> datetime:
        return self.sim.state.clock.now()

    def advance(self, seconds: float) -> None:
        response = self.sim.portal.post("/portal/clock", json={"advance_seconds": seconds})
        assert response.status_code == 200, response.text

    def faults(self, config: dict[str, Any]) -> None:
        response = self.sim.portal.put("/portal/faults", json=config)
        assert response.status_code == 200, response.text

    def seed(self, count: int, prefix: str | None = None) -> list[str]:
        return seed_devices(self.sim.state, self.server.server_id, count, prefix=prefix)

    def sync(self) -> None:
        result = sync_and_assign_now(
            self.factory,
            token_name="acme",
            settings=self.settings,
            box=self.box,
            open_client=dep_client_factory(box=self.box, settings=self.settings),
            clock=self.now,
        )
        assert result.outcome == "succeeded", result

    def client_factory(self) -> ProfileClientFactory:
        """Real clients whose retry pauses are skipped, each wrapped in a :class:`Recorder`."""

        def open_for(_token: DEPToken) -> ProfileAPI:
            inner = DEPClient(
                base_url=self.settings.dep_base_url,
                credentials=OAuthCredentials(**self.credentials),
                max_retries=3,
                sleep=lambda _seconds: None,
            )
            recorder = Recorder(inner)
            self.recorders.append(recorder)
            return recorder

        return open_for

    def run(self, *, real_client: bool = False, batch_size: int = assignment_runner.BATCH_SIZE) -> Any:
        factory = dep_client_factory(box=self.box, settings=self.settings) if real_client else self.client_factory()
        return assignment_runner.run_due_assignments(
            self.factory,
            settings=self.settings,
            box=self.box,
            open_client=factory,
            clock=self.now,
            batch_size=batch_size,
        )

    def queue(self, profile: str = "Staff", **how: Any) -> Any:
        with transaction(self.factory) as session:
            return assignment.queue_assignment(session, profile_name=profile, now=self.now(), actor=TEST_ACTOR, **how)

    def devices(self) -> dict[str, Device]:
        with transaction(self.factory) as session:
            return {device.serial_number: device for device in session.scalars(select(Device))}

    def current_uuid(self) -> str:
        with transaction(self.factory) as session:
            return session.scalars(
                select(ProfileDefinition.profile_uuid).order_by(ProfileDefinition.id.desc()).limit(1)
            ).one()

    def apple_profile(self, profile_uuid: str) -> dict[str, Any]:
        response = self.sim.portal.get(f"/portal/profiles/{profile_uuid}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def accepted(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for recorder in self.recorders:
            total.update(recorder.accepted)
        return total


@pytest.fixture
def env(session_factory: SessionFactory, settings: Settings, sim: RunningSimulator) -> Env:
    return Env(session_factory, settings, sim)


def create(env: Env, **fields: Any) -> None:
    with transaction(env.factory) as session:
        profiles.create_profile(
            session,
            data=ProfileCreate(**{"name": "Staff", **fields}),
            settings=env.settings,
            now=env.now(),
            actor=TEST_ACTOR,
        )


def test_every_field_reaches_apple_as_the_admin_set_it(env: Env) -> None:
    cert = certificate()
    create(
        env,
        user_affinity="with_user",
        supervised=True,
        locked=True,
        mandatory=True,
        allow_pairing=False,
        await_device_configured=True,
        auto_advance_setup=True,
        department="IT Stockholm",
        support_phone="+46 8 123 456",
        support_email="help@example.com",
        org_magic="pippin-42",
        language="sv",
        region="SE",
        anchor_certs=[cert.public_bytes(Encoding.PEM).decode()],
        skip_setup_items=["Passcode", "Siri", "Location", "TOS", "AppleID", "Diagnostics"],
        minimum_os_version="17.4",
    )
    serials = env.seed(3)
    env.sync()
    env.queue(all_unassigned=True)
    report = env.run(real_client=True)
    assert (report.assigned, report.definitions) == (3, 1)

    profile_uuid = env.current_uuid()
    stored = env.apple_profile(profile_uuid)
    with transaction(env.factory) as session:
        profile = session.scalars(select(DEPProfile)).one()
    reference = build_reference(env.box, ProfileRevision(profile_id=profile.id, revision=profile.revision))
    expected = {
        "profile_name": "Staff",
        "url": f"http://127.0.0.1:8000/mdm/enroll/{reference}",
        "configuration_web_url": f"http://127.0.0.1:8000/enroll/web/{reference}",
        "is_supervised": True,
        "is_mdm_removable": False,
        "is_mandatory": True,
        "allow_pairing": False,
        "await_device_configured": True,
        "auto_advance_setup": True,
        "department": "IT Stockholm",
        "support_phone_number": "+46 8 123 456",
        "support_email_address": "help@example.com",
        "org_magic": "pippin-42",
        "language": "sv",
        "region": "SE",
        "anchor_certs": [base64.b64encode(cert.public_bytes(Encoding.DER)).decode()],
        "skip_setup_items": ["AppleID", "Diagnostics", "Location", "Passcode", "Siri", "TOS"],
    }
    assert {key: stored["profile"].get(key) for key in expected} == expected
    # The minimum OS version is Pippin's alone: Apple's profile has no such field, and is never given one.
    assert "minimum_os_version" not in stored["profile"] and "17.4" not in json.dumps(stored["profile"])
    assert stored["devices"] == sorted(serials)
    assert stored["server_uuid"] == env.server.server_uuid

    with DEPClient(base_url=env.settings.dep_base_url, credentials=OAuthCredentials(**env.credentials)) as client:
        fetched = client.get_profile(profile_uuid).model_dump()
    assert {key: fetched.get(key) for key in expected} == expected

    devices = env.devices()
    assert {d.profile_uuid for d in devices.values()} == {profile_uuid}
    assert {d.assignment_status for d in devices.values()} == {"assigned"}


def test_faults_leave_every_device_in_the_right_state_and_none_assigned_twice(env: Env) -> None:
    create(env)
    serials = env.seed(300)
    env.sync()
    env.faults(
        {
            "seed": 11,
            "rates": {"post_profile_devices": {"failed": 0.1, "throttled": 0.1}},
            "throttle_retry_after_seconds": 600,
            "retry_after_seconds": 0,
            "post_profile_devices_responses": [
                {"count": 1, "response": "too_many_requests"},
                {"count": 1, "response": "internal_server_error"},
            ],
        }
    )
    env.queue(all_unassigned=True)
    started = env.now()
    first = env.run(batch_size=100)  # smaller batches than Apple's 1000, to see several with few devices
    ended = env.now()
    assert first.batches == 3 and first.sent == 300
    assert first.failed > 10 and first.throttled > 10 and first.errors == []
    profile_uuid = env.current_uuid()
    truth = set(env.apple_profile(profile_uuid)["devices"])
    devices = env.devices()
    assert {s for s, d in devices.items() if d.assignment_status == "assigned"} == truth
    failed = {s for s, d in devices.items() if d.assignment_status == "failed"}
    throttled = {s for s, d in devices.items() if d.assignment_status == "throttled"}
    assert len(truth) + len(failed) + len(throttled) == 300
    # Apple's clock runs on in real time: the retry time is Apple's retry_after_seconds after the batch's answer.
    for serial in throttled:
        retry_at = devices[serial].assignment_retry_at
        assert retry_at is not None and started + timedelta(seconds=600) <= retry_at <= ended + timedelta(seconds=600)
    for serial in failed:
        retry_at = devices[serial].assignment_retry_at
        assert retry_at is not None and started + timedelta(hours=24) <= retry_at <= ended + timedelta(hours=24)

    env.faults({})
    env.advance(580)
    assert env.run().sent == 0  # not before Apple's retry_after_seconds
    env.advance(30)
    second = env.run()
    assert second.sent == len(throttled) and second.assigned == len(throttled)
    env.advance(24 * 3600 - 660)
    assert env.run().sent == 0  # FAILED devices wait Apple's full 24 hours
    env.advance(60)
    third = env.run()
    assert third.sent == len(failed) and third.assigned == len(failed)

    assert set(env.apple_profile(profile_uuid)["devices"]) == set(serials)
    assert {d.assignment_status for d in env.devices().values()} == {"assigned"}
    accepted = env.accepted()
    assert set(accepted) == set(serials) and set(accepted.values()) == {1}


def test_apple_unreachable_for_a_whole_batch_keeps_it_queued(env: Env) -> None:
    create(env)
    env.seed(10)
    env.sync()
    env.faults({"post_profile_devices_responses": [{"count": 4, "response": "service_unavailable"}]})
    env.queue(all_unassigned=True)
    report = env.run()
    assert report.assigned == 0 and report.errors and "attempts" in report.errors[0]
    devices = env.devices()
    assert {d.assignment_status for d in devices.values()} == {"pending"}
    for device in devices.values():
        assert device.assignment_retry_at is not None
        assert timedelta(minutes=4) < device.assignment_retry_at - env.now() <= timedelta(minutes=5)
        assert "attempts" in (device.assignment_error or "")
    assert env.apple_profile(env.current_uuid())["devices"] == []
    env.advance(300)
    assert env.run().assigned == 10
    assert len(env.apple_profile(env.current_uuid())["devices"]) == 10
    # Apple's answer never came, so the devices were looked up at Apple (which held no profile) before the retry.
    assert sorted(env.recorders[-1].looked_up) == sorted(devices)


def test_an_edit_is_defined_anew_and_reaches_every_device(env: Env) -> None:
    create(env, skip_setup_items=["Siri"])
    serials = env.seed(150)
    env.sync()
    env.queue(all_unassigned=True)
    env.run(batch_size=100)
    old_uuid = env.current_uuid()
    with transaction(env.factory) as session:
        profiles.update_profile(
            session,
            name="Staff",
            changes=ProfileUpdate(skip_setup_items=["Siri", "Passcode"]),
            settings=env.settings,
            actor=TEST_ACTOR,
        )
    report = env.run(batch_size=100)
    assert (report.definitions, report.assigned, report.batches) == (1, 150, 2)
    new_uuid = env.current_uuid()
    assert new_uuid != old_uuid
    assert env.apple_profile(new_uuid)["profile"]["skip_setup_items"] == ["Passcode", "Siri"]
    assert env.apple_profile(new_uuid)["devices"] == sorted(serials)
    assert env.apple_profile(old_uuid)["devices"] == []


def test_a_new_minimum_os_version_is_not_defined_at_apple(env: Env) -> None:
    """Apple never sees the setting, so changing it redefines nothing and leaves every device assigned."""
    create(env)
    serials = env.seed(5)
    env.sync()
    env.queue(all_unassigned=True)
    env.run()
    before = env.current_uuid()
    with transaction(env.factory) as session:
        changed = profiles.update_profile(
            session,
            name="Staff",
            changes=ProfileUpdate(minimum_os_version="17.4"),
            settings=env.settings,
            actor=TEST_ACTOR,
        )
    assert changed.revision == 1
    report = env.run()
    assert (report.apple_calls, report.definitions, report.sent) == (0, 0, 0)
    assert env.current_uuid() == before
    assert env.apple_profile(before)["devices"] == sorted(serials)
    assert {d.assignment_status for d in env.devices().values()} == {"assigned"}


def test_the_default_profile_reaches_devices_added_by_a_sync(env: Env) -> None:
    create(env)
    with transaction(env.factory) as session:
        token = session.scalars(select(DEPToken)).one()
        profiles.set_default_profile(session, token_name=token.name, profile_name="Staff", actor=TEST_ACTOR)
    first = env.seed(5, prefix="FIRST")
    env.sync()
    assert {d.assignment_status for d in env.devices().values()} == {"assigned"}
    second = env.seed(3, prefix="LATER")
    env.sync()
    stored = env.apple_profile(env.current_uuid())
    assert stored["devices"] == sorted(first + second)
    assert {d.assignment_status for d in env.devices().values()} == {"assigned"}
