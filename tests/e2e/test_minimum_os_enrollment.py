"""A profile's minimum OS version, end to end: a simulated iPhone running an older iOS is switched on, Pippin
answers its MachineInfo with Apple's ``com.apple.softwareupdate.required``, the device updates itself as iOS does
and enrolls. Pippin over real HTTP on loopback (``tests/e2e/seeded_pippin.py``), Apple the simulator, both
databases."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from pippin.dep import profiles
from pippin.dep.profile_schemas import ProfileUpdate
from pippin.sim.iphone.device_state import DeviceState
from pippin.sim.iphone.identity import fetch_from_factory
from pippin.store.db import transaction
from pippin.store.models import Device, Enrollment
from tests.actors import TEST_ACTOR
from tests.conftest import DATABASES, empty_database_url
from tests.e2e.seeded_pippin import DEFAULT_PROFILE, STAFF_PROFILE, USER, SeededPippin, seeded_pippin

MINIMUM = "18.2"
#: What the device runs when it is switched on: older than the minimum, new enough to be asked to update.
OLDER, OLDER_BUILD = "17.6", "21G80"


@pytest.fixture(scope="module", params=DATABASES)
def pippin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededPippin]:
    directory = tmp_path_factory.mktemp(f"minimum-os-{request.param}")
    url = empty_database_url(request, request.param, directory)
    with seeded_pippin(url, directory, devices=1, staff_devices=1) as seeded:
        with transaction(seeded.session_factory) as session:
            for name in (DEFAULT_PROFILE, STAFF_PROFILE):  # Pippin's own policy: the revision stays
                profiles.update_profile(
                    session,
                    name=name,
                    changes=ProfileUpdate(minimum_os_version=MINIMUM),
                    settings=seeded.settings,
                    actor=TEST_ACTOR,
                )
        yield seeded


@pytest.mark.parametrize("staff", [False, True], ids=["direct", "sign-in"])
def test_an_older_device_is_told_to_update_updates_and_enrolls(pippin: SeededPippin, staff: bool) -> None:
    """Without user affinity the refusal answers the posted MachineInfo; with it, the sign-in page's first request,
    before anyone signs in."""
    serial = pippin.take(staff=staff)
    with httpx.Client(base_url=pippin.apple.base_url, timeout=30) as factory:
        facts, identity = fetch_from_factory(factory, serial)
    pippin.states.save(
        DeviceState(serial_number=serial, facts=facts.updated_to(OLDER, OLDER_BUILD), factory_identity=identity)
    )
    said: list[str] = []
    device = pippin.device(
        serial,
        progress=lambda _serial, text: said.append(text),
        user=USER if staff else None,
        password=pippin.password if staff else None,
    )
    device.boot()
    assert f"updating to iOS {MINIMUM} as the server requires, then trying again" in said
    first_request = "opening the enrollment web page" if staff else "posting its signed MachineInfo"
    assert said[-1] == "enrolled" and said.count(first_request) == 2
    assert said.count(f"signing in as {USER}") == (1 if staff else 0)
    assert device.state.enrolled and device.state.facts is not None
    assert device.state.facts.os_version == MINIMUM
    with transaction(pippin.session_factory) as session:
        enrolled = session.scalars(select(Enrollment).where(Enrollment.serial_number == serial)).one()
        known = session.scalars(select(Device).where(Device.serial_number == serial)).one()
    assert enrolled.profile_id == known.assigned_profile_id
    assert (enrolled.primary_user_id is not None) is staff
