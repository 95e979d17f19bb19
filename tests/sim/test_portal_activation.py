"""The device side and profile views: cloud configuration at Setup Assistant, and a profile as Apple keeps it."""

from __future__ import annotations

from sqlalchemy import select, update

from pippin.sim.models import SimDevice, SimDeviceEvent, SimMDMServer, SimProfile
from tests.sim.portal_client import assign, create_devices, create_server
from tests.simulator import RunningSimulator

PROFILE_UUID = "C1F123098EB5074580041E69883004C3"
PROFILE = {
    "profile_name": "Corporate iPhones",
    "url": "https://mdm.example.com/enroll",
    "is_supervised": True,
    "is_mandatory": True,
    "is_mdm_removable": False,
    "await_device_configured": True,
    "skip_setup_items": ["Siri", "Privacy"],
    "department": "IT",
    "support_phone_number": "+46 8 000 00 00",
    "org_magic": "magic-1",
}


def _give_profile(sim: RunningSimulator, server_uuid: str, serials: list[str]) -> None:
    """What POST /profile and /profile/devices leave behind, written directly (they are tested elsewhere)."""
    with sim.state.transaction() as session:
        server = session.scalars(select(SimMDMServer).where(SimMDMServer.server_uuid == server_uuid)).one()
        session.add(
            SimProfile(profile_uuid=PROFILE_UUID, server_id=server.id, body=PROFILE, created_at=sim.state.clock.now())
        )
        session.execute(
            update(SimDevice)
            .where(SimDevice.serial_number.in_(serials))
            .values(profile_uuid=PROFILE_UUID, profile_status="assigned", profile_assign_time=sim.state.clock.now())
        )


def test_cloud_configuration_is_the_profile_in_camel_case_and_marks_the_device_pushed(sim: RunningSimulator) -> None:
    server = create_server(sim.portal, "A")
    serial, other = create_devices(sim.portal, 2)
    assign(sim.portal, server, [serial, other])
    _give_profile(sim, server, [serial])
    response = sim.portal.post("/activation/cloud-configuration", json={"serial_number": serial})
    assert response.status_code == 200
    configuration = response.json()
    assert configuration["ConfigurationURL"] == "https://mdm.example.com/enroll"
    assert configuration["IsSupervised"] is True and configuration["IsMandatory"] is True
    assert configuration["IsMDMUnremovable"] is True and configuration["AwaitDeviceConfigured"] is True
    assert configuration["SkipSetup"] == ["Siri", "Privacy"] and configuration["Department"] == "IT"
    assert configuration["OrganizationName"] == "Pippin Test Organization"
    assert configuration["OrganizationMagic"] == "magic-1" and configuration["AllowPairing"] is True
    assert not any("_" in key for key in configuration)
    device = sim.portal.get(f"/portal/devices/{serial}").json()
    assert device["profile_status"] == "pushed" and device["profile_push_time"]
    with sim.state.transaction() as session:
        last = session.scalars(select(SimDeviceEvent).order_by(SimDeviceEvent.seq.desc())).first()
        assert last is not None and last.op_type == "modified" and last.snapshot["profile_status"] == "pushed"
        assert "profile_push_time" in last.snapshot


def test_no_profile_no_cloud_configuration(sim: RunningSimulator) -> None:
    server = create_server(sim.portal)
    assigned, loose = create_devices(sim.portal, 2)
    assign(sim.portal, server, [assigned])
    for serial, code in ((assigned, "no_profile"), (loose, "not_assigned"), ("NOSUCH1", "device_not_found")):
        response = sim.portal.post("/activation/cloud-configuration", json={"serial_number": serial})
        assert response.status_code == 404 and response.json()["error"] == code


def test_a_profile_is_shown_with_the_serials_it_is_assigned_to(sim: RunningSimulator) -> None:
    server = create_server(sim.portal)
    serials = create_devices(sim.portal, 3)
    assign(sim.portal, server, serials)
    _give_profile(sim, server, serials[:2])
    shown = sim.portal.get(f"/portal/profiles/{PROFILE_UUID}").json()
    assert shown["profile_uuid"] == PROFILE_UUID and shown["server_uuid"] == server
    assert shown["profile"] == PROFILE and shown["devices"] == sorted(serials[:2])
    assert sim.portal.get("/portal/profiles/" + "0" * 32).json()["error"] == "profile_not_found"
