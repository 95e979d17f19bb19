"""A running Pippin after the seed's steps 1 to 7, ready for step 8: devices switched on enroll over the air.

:func:`seeded_pippin` does what ``make demo`` (``tools/demo.py``) does before step 8, through the services and
the simulated Apple's portal instead of the CLI: the push certificate from the simulated Push Certificates Portal
(signed with a vendor certificate from the same portal, so the simulated APNs trusts it), a DEP token, a locked
default profile and a locked profile with user affinity, devices assigned at Apple and synced, a directory user,
the simulated factory's device CA as the trust anchor of MachineInfo. Then it serves Pippin on loopback, where the
devices find it through the cloud configuration Apple hands them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.fernet import Fernet
from starlette.applications import Starlette

from pippin.admin import directory
from pippin.config import Settings
from pippin.crypto.keys import KeyGenerator
from pippin.crypto.secrets import SecretBox
from pippin.dep import assignment, profiles
from pippin.dep.assignment_runner import run_due_assignments
from pippin.dep.profile_schemas import ProfileCreate
from pippin.dep.sync_and_assign import sync_and_assign_now
from pippin.dep.token import dep_client_factory
from pippin.push import certificate, request, vendor
from pippin.sim.iphone.device import Progress, SimulatedDevice
from pippin.sim.iphone.device_state import StateDirectory
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import UserAffinity
from tests.actors import TEST_ACTOR
from tests.crypto.openssl_tokens import pooled_key_generator
from tests.e2e.apple import add_devices, connect_token
from tests.servers import build_server, cheap_argon2, free_port, resources_of, serve_in_thread
from tests.simulator import RunningSimulator, run_simulator

TOKEN = "acme"
APPLE_ID = "it-admin@example.com"
DEFAULT_PROFILE = "Corporate iPhones"
STAFF_PROFILE = "Staff iPhones"
USER = "alice"


@dataclass
class SeededPippin:
    """Pippin serving at ``url`` over ``settings``, with the simulated Apple ``apple`` it synced from.

    The synced devices are handed out one test at a time by :meth:`take`: those with the default profile, or
    with ``staff`` those with the profile with user affinity, whose user ``USER`` signs in with ``password``.
    """

    url: str
    settings: Settings
    server: Starlette
    apple: RunningSimulator
    password: str
    serials: list[str]
    staff_serials: list[str]
    states: StateDirectory
    _taken: set[str] = field(default_factory=set)
    _ca: x509.Certificate | None = None

    @property
    def pippin_ca(self) -> x509.Certificate:
        """The CA that signs Pippin's enrollment profiles (GetCACert hands it out), which the devices trust as a
        DEP profile's anchor certificates would make them; read from the serving Pippin once."""
        if self._ca is None:
            ca = httpx.get(f"{self.url}/mdm/scep", params={"operation": "GetCACert"}, timeout=30)
            assert ca.status_code == 200, ca.text
            self._ca = x509.load_der_x509_certificate(ca.content)
        return self._ca

    @property
    def session_factory(self) -> SessionFactory:
        return resources_of(self.server).session_factory

    def take(self, *, staff: bool = False) -> str:
        """A device no test has switched on yet, of the default profile or (``staff``) the one with user affinity."""
        serial = next(s for s in (self.staff_serials if staff else self.serials) if s not in self._taken)
        self._taken.add(serial)
        return serial

    def device(
        self,
        serial: str,
        *,
        progress: Progress | None = None,
        states: StateDirectory | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> SimulatedDevice:
        """Device ``serial`` as it is now: a new one over the same state directory is the same device restarted."""
        return SimulatedDevice(
            sim_url=self.apple.base_url,
            serial_number=serial,
            states=states or self.states,
            trust=[self.pippin_ca],
            user=user,
            password=password,
            progress=progress,
        )


def _activate_push_certificate(
    factory: SessionFactory, box: SecretBox, apple: RunningSimulator, *, generate_key: KeyGenerator
) -> None:
    """Seed step 1: a vendor certificate from the simulated portal signs Pippin's request; the portal issues."""
    issued_vendor = apple.portal.post("/portal/push/vendor-certificates", json={"vendor_name": "Acme"})
    assert issued_vendor.status_code == 201, issued_vendor.text
    with transaction(factory) as session:
        vendor.import_vendor_certificate(
            session,
            certificate=issued_vendor.json()["chain_pem"].encode(),
            key=issued_vendor.json()["private_key_pem"].encode(),
            box=box,
            actor=TEST_ACTOR,
        )
        signed = request.create_request(session, box=box, actor=TEST_ACTOR, generate_key=generate_key)
    issued = apple.portal.post(
        "/portal/push/certificates", json={"apple_id": APPLE_ID, "request": signed.content.decode()}
    )
    assert issued.status_code == 201, issued.text
    with transaction(factory) as session:
        certificate.upload_certificate(
            session, data=issued.json()["certificate_pem"].encode(), apple_id=APPLE_ID, box=box, actor=TEST_ACTOR
        )


def _define_profiles(factory: SessionFactory, settings: Settings) -> None:
    """Seed step 5: a locked default profile, and a locked one whose user signs in during setup."""
    with transaction(factory) as session:
        profiles.create_profile(
            session,
            data=ProfileCreate(name=DEFAULT_PROFILE, supervised=True, locked=True),
            settings=settings,
            actor=TEST_ACTOR,
        )
        profiles.create_profile(
            session,
            data=ProfileCreate(name=STAFF_PROFILE, supervised=True, locked=True, user_affinity=UserAffinity.with_user),
            settings=settings,
            actor=TEST_ACTOR,
        )
        profiles.set_default_profile(session, token_name=TOKEN, profile_name=DEFAULT_PROFILE, actor=TEST_ACTOR)


@contextmanager
def seeded_pippin(
    database_url: str, directory_path: Path, *, devices: int, staff_devices: int, serve: bool = True
) -> Iterator[SeededPippin]:
    """Pippin on ``database_url`` (empty, migrated) after the seed's steps 1 to 7 with ``devices`` devices of the
    default profile and ``staff_devices`` with user affinity; serving until the block ends (``serve=False``: the
    caller serves ``settings.server_url``, e.g. with a ``pippin serve`` process). Files go under
    ``directory_path``."""
    port = free_port()
    with run_simulator(directory_path / "sim", with_apns=True) as apple:
        assert apple.apns is not None
        device_ca = apple.portal.get("/factory/device-ca.pem")
        assert device_ca.status_code == 200, device_ca.text
        anchors = directory_path / "device-ca.pem"
        anchors.write_bytes(device_ca.content)
        settings = Settings(
            data_dir=directory_path / "pippin",
            database_url=database_url,
            secret_key=Fernet.generate_key().decode(),
            server_url=f"http://127.0.0.1:{port}",
            dep_base_url=apple.base_url,
            apns_base_url=apple.apns.url,
            apns_ca_file=apple.apns.ca_path,
            device_trust_anchors_file=anchors,
        )
        server = build_server(settings)
        factory = resources_of(server).session_factory
        box = resources_of(server).secret_box
        keys = pooled_key_generator()
        _activate_push_certificate(factory, box, apple, generate_key=keys)
        server_uuid = connect_token(factory, settings, apple, TOKEN, generate_key=keys)
        serials = sorted(add_devices(apple, server_uuid, devices + staff_devices))
        _define_profiles(factory, settings)
        open_client = dep_client_factory(box=box, settings=settings)
        synced = sync_and_assign_now(factory, token_name=TOKEN, settings=settings, box=box, open_client=open_client)
        assert synced.outcome == "succeeded", synced
        staff_serials, serials = serials[:staff_devices], serials[staff_devices:]
        with transaction(factory) as session:
            assignment.queue_assignment(session, profile_name=STAFF_PROFILE, serials=staff_serials, actor=TEST_ACTOR)
        sent = run_due_assignments(factory, settings=settings, box=box, open_client=open_client)
        assert sent.sent == staff_devices, sent
        password = secrets.token_urlsafe(12)
        with transaction(factory) as session:
            directory.add_user(session, username=USER, password=password, actor=TEST_ACTOR, passwords=cheap_argon2())
        seeded = SeededPippin(
            url=f"http://127.0.0.1:{port}",
            settings=settings,
            server=server,
            apple=apple,
            password=password,
            serials=serials,
            staff_serials=staff_serials,
            states=StateDirectory(directory_path / "devices"),
        )
        if not serve:
            try:
                yield seeded
            finally:
                resources_of(server).engine.dispose()  # no lifespan ran to dispose it
            return
        with serve_in_thread(server, port=port):
            yield seeded
