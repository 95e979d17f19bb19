"""A profile's minimum OS version, end to end: a simulated iPhone running an older iOS is switched on, Pippin
answers its MachineInfo with Apple's ``com.apple.softwareupdate.required``, the device updates itself as iOS does
and enrolls. Pippin over real HTTP on loopback, Apple the simulator, both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from pippin.admin import directory
from pippin.admin.passwords import PasswordWork
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep import profiles
from pippin.dep.profile_schemas import ProfileCreate
from pippin.dep.sync_and_assign import sync_and_assign_now
from pippin.dep.token import dep_client_factory
from pippin.sim.iphone.device import SimulatedDevice
from pippin.sim.iphone.device_state import DeviceState, StateDirectory
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import Device, Enrollment, UserAffinity, utcnow
from tests.actors import TEST_ACTOR
from tests.e2e.apple import add_devices, connect_token
from tests.mdm.enrollment_setup import activate_push_certificate
from tests.servers import build_server, cheap_argon2, free_port, serve_in_thread
from tests.sim.iphone.mdm_server import DEVICE_CA
from tests.sim.iphone.pki import facts, issue
from tests.simulator import RunningSimulator, run_simulator

MINIMUM = "18.2"
USER, PASSWORD = "alice", "correct horse battery staple"


@pytest.fixture
def apple(tmp_path: Path) -> Iterator[RunningSimulator]:
    with run_simulator(tmp_path / "sim", with_apns=True) as running:
        yield running


def _pippin_settings(settings: Settings, apple: RunningSimulator, tmp_path: Path, port: int) -> Settings:
    anchors = tmp_path / "device-cas.pem"
    anchors.write_bytes(DEVICE_CA.certificate.public_bytes(Encoding.PEM))
    return settings.model_copy(
        update={
            "dep_base_url": apple.base_url,
            "dep_max_retries": 1,
            "server_url": f"http://127.0.0.1:{port}",
            "device_trust_anchors_file": anchors,
        }
    )


def _assign_profile(
    factory: SessionFactory, settings: Settings, apple: RunningSimulator, affinity: UserAffinity
) -> str:
    """A token at the simulated Apple with one device, given a profile that asks for iOS 18.2 (through Pippin's
    own sync and assignment), and an organisation user; returns the device's serial."""
    server_uuid = connect_token(factory, settings, apple)
    (serial,) = add_devices(apple, server_uuid, 1)
    with transaction(factory) as session:
        activate_push_certificate(session, not_after=utcnow().replace(year=utcnow().year + 1))
        profiles.create_profile(
            session,
            data=ProfileCreate(name="Staff", minimum_os_version=MINIMUM, user_affinity=affinity),
            settings=settings,
            actor=TEST_ACTOR,
        )
        profiles.set_default_profile(session, token_name="acme", profile_name="Staff", actor=TEST_ACTOR)
        directory.add_user(session, username=USER, password=PASSWORD, actor=TEST_ACTOR, passwords=cheap_argon2())
    box = SecretBox.from_settings(settings)
    synced = sync_and_assign_now(
        factory,
        token_name="acme",
        settings=settings,
        box=box,
        open_client=dep_client_factory(box=box, settings=settings),
    )
    assert synced.outcome == "succeeded", synced
    return serial


@pytest.mark.parametrize("affinity", list(UserAffinity))
def test_an_older_device_is_told_to_update_updates_and_enrolls(
    session_factory: SessionFactory, settings: Settings, apple: RunningSimulator, tmp_path: Path, affinity: UserAffinity
) -> None:
    """Without user affinity the refusal answers the posted MachineInfo; with it, the sign-in page's first request,
    before anyone signs in."""
    port = free_port()
    configured = _pippin_settings(settings, apple, tmp_path, port)
    serial = _assign_profile(session_factory, configured, apple, affinity)
    states = StateDirectory(tmp_path / "devices")
    # iOS 18.1, able to be asked to update: its facts and identity as the factory makes them, from the test's CA.
    states.save(
        DeviceState(
            serial_number=serial, facts=facts(serial, os_version="18.1"), factory_identity=issue(DEVICE_CA, serial)
        )
    )
    said: list[str] = []
    work = PasswordWork(cheap_argon2(), at_once=2, waiting=8, per_client=8)
    with serve_in_thread(build_server(configured, password_work=work), port=port) as base_url:
        ca = httpx.get(f"{base_url}/mdm/scep", params={"operation": "GetCACert"}, timeout=30)
        assert ca.status_code == 200, ca.text
        device = SimulatedDevice(
            sim_url=apple.base_url,
            serial_number=serial,
            states=states,
            trust=[x509.load_der_x509_certificate(ca.content)],
            user=USER,
            password=PASSWORD,
            progress=lambda _serial, text: said.append(text),
        )
        device.boot()
    assert f"updating to iOS {MINIMUM} as the server requires, then trying again" in said
    first_request = (
        "opening the enrollment web page" if affinity is UserAffinity.with_user else "posting its signed MachineInfo"
    )
    assert said[-1] == "enrolled" and said.count(first_request) == 2
    assert said.count(f"signing in as {USER}") == (1 if affinity is UserAffinity.with_user else 0)
    assert device.state.enrolled and device.state.facts is not None
    assert device.state.facts.os_version == MINIMUM
    with transaction(session_factory) as session:
        enrolled = session.scalars(select(Enrollment).where(Enrollment.serial_number == serial)).one()
        known = session.scalars(select(Device).where(Device.serial_number == serial)).one()
    assert enrolled.profile_id == known.assigned_profile_id
    if affinity is UserAffinity.with_user:
        assert enrolled.primary_user_id is not None
