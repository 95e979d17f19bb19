"""The issue's reproduction against the simulated Apple: devices whose profile Apple dropped are seen as such.

Two tokens; devices on A get a profile; some move to B in the portal (Apple shows them with no profile), one is
released and re-assigned to A. After syncing A and B, Pippin's view of every device's profile equals Apple's,
B's default profile reaches the moved devices, and the device A has no default for is counted as unable to enroll.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from pippin.config import Settings
from pippin.dep import assignment_runner, profiles
from pippin.dep.sync_and_assign import sync_and_assign_now
from pippin.dep.token import dep_client_factory
from pippin.inventory import devices as inventory_service
from pippin.inventory.schemas import DeviceFilters
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import DEPToken, Device, ProfileDefinition
from tests.actors import TEST_ACTOR
from tests.dep.test_assignment_sim import Env, create
from tests.sim.apple import create_test_server
from tests.simulator import RunningSimulator


class TwoTokens(Env):
    """:class:`Env`'s token ``acme`` (server A), and ``beta`` on a second simulated MDM server (B)."""

    def __init__(self, factory: SessionFactory, settings: Settings, sim: RunningSimulator) -> None:
        super().__init__(factory, settings, sim)
        self.beta = create_test_server(self.sim.state, name="Second MDM")
        self.add_token("beta", self.beta)

    def sync_token(self, name: str) -> None:
        result = sync_and_assign_now(
            self.factory,
            token_name=name,
            settings=self.settings,
            box=self.box,
            open_client=dep_client_factory(box=self.box, settings=self.settings),
            clock=self.now,
        )
        assert result.outcome == "succeeded", result

    def portal(self, method: str, path: str, body: dict[str, Any]) -> None:
        response = self.sim.portal.request(method, path, json=body)
        assert response.status_code == 200, response.text

    def apple_view(self, serial: str) -> tuple[str | None, str | None]:
        response = self.sim.portal.get(f"/portal/devices/{serial}")
        assert response.status_code == 200, response.text
        body = response.json()
        return body.get("profile_status"), body.get("profile_uuid")

    def pippin_view(self) -> dict[str, str | None]:
        """The UUID of the definition Pippin holds as assigned for each device, under the device's token."""
        with transaction(self.factory) as session:
            rows = session.execute(
                select(Device.serial_number, ProfileDefinition.profile_uuid)
                .outerjoin(
                    ProfileDefinition,
                    (ProfileDefinition.profile_id == Device.assigned_profile_id)
                    & (ProfileDefinition.revision == Device.assigned_revision)
                    & (ProfileDefinition.token_id == Device.token_id),
                )
                .where(Device.assignment_status == "assigned")
            ).all()
            held = {serial: uuid for serial, uuid in rows}
            every = session.scalars(select(Device.serial_number)).all()
        return {serial: held.get(serial) for serial in every}


@pytest.fixture
def env(session_factory: SessionFactory, settings: Settings, sim: RunningSimulator) -> TwoTokens:
    return TwoTokens(session_factory, settings, sim)


def test_devices_moved_to_another_server_get_its_default_profile_and_views_match(env: TwoTokens) -> None:
    create(env)  # "Staff", given by hand on A
    create(env, name="Kiosk")  # B's default
    serials = env.seed(6, prefix="MOVE")
    env.sync_token("acme")
    env.queue(serials=serials)
    env.run(real_client=True)
    with transaction(env.factory) as session:
        assert {d.assignment_status for d in session.scalars(select(Device))} == {"assigned"}
        beta = session.scalars(select(DEPToken).where(DEPToken.name == "beta")).one()
        profiles.set_default_profile(session, token_name=beta.name, profile_name="Kiosk", actor=TEST_ACTOR)

    moved, released = serials[:4], serials[4]
    env.portal("POST", "/portal/assignments", {"server_uuid": env.beta.server_uuid, "serials": moved})
    env.portal("DELETE", "/portal/assignments", {"serials": [released]})
    env.portal("POST", "/portal/assignments", {"server_uuid": env.server.server_uuid, "serials": [released]})
    env.sync_token("acme")
    env.sync_token("beta")

    # Nothing is left for retry-due: B's sync sent its default to the moved devices.
    leftover = assignment_runner.run_due_assignments(
        env.factory, settings=env.settings, box=env.box, open_client=env.client_factory(), clock=env.now
    )
    assert (leftover.sent, leftover.apple_calls) == (0, 0)

    with transaction(env.factory) as session:
        kiosk = profiles.get_profile(session, name="Kiosk")
        stored = {d.serial_number: d for d in session.scalars(select(Device))}
        kiosk_on_b = session.scalars(
            select(ProfileDefinition.profile_uuid).where(
                ProfileDefinition.profile_id == kiosk.id, ProfileDefinition.token_id == stored[moved[0]].token_id
            )
        ).one()
    for serial in moved:
        assert stored[serial].assigned_profile_id == kiosk.id and stored[serial].assignment_status == "assigned"
        assert env.apple_view(serial) == ("assigned", kiosk_on_b)
    # The released and re-assigned device: A has no default, so it has no profile, and says so.
    assert stored[released].assignment_status is None and stored[released].assigned_profile_id is None
    assert env.apple_view(released) == ("empty", None)

    env.sync_token("acme")
    env.sync_token("beta")
    for serial, held in env.pippin_view().items():
        status, apple_uuid = env.apple_view(serial)
        assert held == (apple_uuid if status in ("assigned", "pushed") else None), serial

    with transaction(env.factory) as session:
        assert inventory_service.count_cannot_enroll(session) == 1
        listed = inventory_service.list_devices(session, filters=DeviceFilters(cannot_enroll=True))
    assert [device.serial_number for device in listed.devices] == [released]
