"""A simulated device switched on: the whole of Setup Assistant against the simulated Apple and an MDM server,
over real HTTP, then pushes, restarts, 401s and removal."""

from __future__ import annotations

import json
import plistlib
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pippin.sim.apns_delivery import Notification
from pippin.sim.iphone.device import SimulatedDevice
from pippin.sim.iphone.device_state import DeviceState, StateDirectory
from pippin.sim.iphone.errors import RemovalRefused, SetupFailed
from tests.sim.iphone.mdm_server import DEVICE_CA, MDMServer, device_assigned_to, run_mdm_server
from tests.sim.iphone.pki import facts, issue
from tests.sim.iphone.profiles import TOPIC
from tests.sim.portal_client import create_devices
from tests.simulator import RunningSimulator, run_simulator

WAIT_SECONDS = 30.0  # an upper bound for a thread to react, never a timing the test measures


@pytest.fixture(scope="module")
def apple(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    with run_simulator(tmp_path_factory.mktemp("sim"), with_apns=True) as running:
        yield running


@pytest.fixture
def mdm() -> Iterator[MDMServer]:
    with run_mdm_server(MDMServer()) as running:
        yield running


def _device_for(
    apple: RunningSimulator, mdm: MDMServer, tmp_path: Path, *, os_version: str = "18.1", **profile: Any
) -> SimulatedDevice:
    states = StateDirectory(tmp_path / "devices")
    serial = device_assigned_to(apple, mdm, states, os_version=os_version, **profile)
    return SimulatedDevice(sim_url=apple.base_url, serial_number=serial, states=states)


def _push(apple: RunningSimulator, token: str, magic: str) -> None:
    assert apple.apns is not None
    delivery = apple.apns.delivery
    payload = json.dumps({"mdm": magic}).encode()
    delivery.push(
        token,
        Notification(
            apns_id=str(uuid.uuid4()),
            payload=payload,
            topic=TOPIC,
            push_type="mdm",
            priority=10,
            expires_at=delivery.now() + timedelta(hours=1),  # kept until the device waits
            received_at=delivery.now(),
        ),
    )


def test_a_device_enrolls_over_the_air_and_connects_when_pushed(
    apple: RunningSimulator, mdm: MDMServer, tmp_path: Path
) -> None:
    device = _device_for(apple, mdm, tmp_path, await_device_configured=True)
    device.boot()
    assert mdm.message_types() == ["Authenticate", "TokenUpdate", "Idle"], "enrolled, it connects once"
    mdm.connected.clear()
    (info,) = mdm.machine_infos
    assert info["SERIAL"] == device.serial_number and info["OS_VERSION"] == "18.1"
    update_message = mdm.messages[1]
    state = device.state
    assert state.enrolled and state.push_token and state.push_magic
    assert update_message["Token"] == bytes.fromhex(state.push_token)
    assert update_message["PushMagic"] == state.push_magic and update_message["AwaitingConfiguration"] is True
    assert apple.portal.get(f"/apns/tokens/{state.push_token}").json()["topic"] == TOPIC
    assert mdm.scep.requests[0].subject.rfc4514_string() == "CN=MDM identity,O=Example"

    stop = threading.Event()
    waiter = threading.Thread(target=device.wait_for_pushes, args=(stop,), kwargs={"wait_seconds": 1.0})
    waiter.start()
    try:
        _push(apple, state.push_token, state.push_magic)
        assert mdm.connected.wait(WAIT_SECONDS)
    finally:
        stop.set()
        waiter.join(WAIT_SECONDS)
    assert mdm.messages[-1] == {"Status": "Idle", "UDID": facts().udid}


def test_a_device_switched_on_again_stays_enrolled_and_does_not_enroll_twice(
    apple: RunningSimulator, mdm: MDMServer, tmp_path: Path
) -> None:
    device = _device_for(apple, mdm, tmp_path)
    device.boot()
    again = SimulatedDevice(sim_url=apple.base_url, serial_number=device.serial_number, states=device._states)
    again.boot()
    assert again.state.enrolled and again.state.push_magic == device.state.push_magic
    assert mdm.message_types() == ["Authenticate", "TokenUpdate", "Idle", "Idle"], "it connects at every boot"


def test_the_software_update_the_server_requires_is_made_once_and_enrollment_tried_again(
    apple: RunningSimulator, mdm: MDMServer, tmp_path: Path
) -> None:
    mdm.minimum_os = ("18.2", "22C152")
    device = _device_for(apple, mdm, tmp_path)
    device.boot()
    assert [(i["OS_VERSION"], i["VERSION"]) for i in mdm.machine_infos] == [("18.1", "22B83"), ("18.2", "22C152")]
    assert mdm.messages[0]["OSVersion"] == "18.2"


def test_a_device_that_cannot_request_an_update_stops_clearly(
    apple: RunningSimulator, mdm: MDMServer, tmp_path: Path
) -> None:
    mdm.minimum_os = ("17.0", "21A329")
    device = _device_for(apple, mdm, tmp_path, os_version="16.7")
    with pytest.raises(SetupFailed, match="cannot ask for") as raised:
        device.boot()
    assert raised.value.step == "enrollment" and not mdm.messages


def test_an_unrecognised_device_stops_at_enrollment(apple: RunningSimulator, mdm: MDMServer, tmp_path: Path) -> None:
    mdm.unrecognized = True
    with pytest.raises(SetupFailed, match="does not recognise"):
        _device_for(apple, mdm, tmp_path).boot()


def test_user_affinity_signs_in_on_the_web_page_then_enrolls(
    apple: RunningSimulator, mdm: MDMServer, tmp_path: Path
) -> None:
    mdm.users = {"ann@example.com": "correct horse"}
    device = _device_for(apple, mdm, tmp_path, configuration_web_url=f"{mdm.base_url}/web")
    device._user, device._password = "ann@example.com", "correct horse"
    device.boot()
    assert mdm.signed_in == ["ann@example.com"] and mdm.message_types() == ["Authenticate", "TokenUpdate", "Idle"]


def test_a_wrong_password_or_none_stops_at_sign_in(apple: RunningSimulator, mdm: MDMServer, tmp_path: Path) -> None:
    mdm.users = {"ann@example.com": "correct horse"}
    device = _device_for(apple, mdm, tmp_path, configuration_web_url=f"{mdm.base_url}/web")
    with pytest.raises(SetupFailed, match="--user and --password"):
        device.boot()
    device._user, device._password = "ann@example.com", "wrong"
    with pytest.raises(SetupFailed, match="not accepted") as raised:
        device.boot()
    assert raised.value.step == "sign-in" and not mdm.messages


def test_no_profile_assigned_stops_at_the_cloud_configuration(apple: RunningSimulator, tmp_path: Path) -> None:
    (serial,) = create_devices(apple.portal, 1)
    states = StateDirectory(tmp_path)
    states.save(DeviceState(serial_number=serial, facts=facts(serial), factory_identity=issue(DEVICE_CA, serial)))
    with pytest.raises(SetupFailed, match="not assigned") as raised:
        SimulatedDevice(sim_url=apple.base_url, serial_number=serial, states=states).boot()
    assert raised.value.step == "cloud configuration"


def test_a_401_makes_the_device_remove_its_mdm_profile(apple: RunningSimulator, mdm: MDMServer, tmp_path: Path) -> None:
    device = _device_for(apple, mdm, tmp_path)
    device.boot()
    token, magic = device.state.push_token, device.state.push_magic
    assert token and magic
    mdm.unauthorized = True
    _push(apple, token, magic)  # stored by APNs until the device waits
    assert device.wait_for_pushes(threading.Event(), wait_seconds=1.0) == 0
    assert not device.state.enrolled and device.profiles.mdm_profile() is None
    assert apple.portal.get(f"/apns/tokens/{token}").json()["unregistered_at"] is not None


def test_the_user_cannot_remove_a_locked_enrollment(apple: RunningSimulator, mdm: MDMServer, tmp_path: Path) -> None:
    mdm.locked = True
    device = _device_for(apple, mdm, tmp_path)
    device.boot()
    with pytest.raises(RemovalRefused):
        device.remove_profile("com.example.mdm.enrollment", by_user=True)
    assert device.state.enrolled and mdm.message_types() == ["Authenticate", "TokenUpdate", "Idle"]


def test_the_user_cannot_remove_an_mdm_profile_apple_says_is_unremovable(
    apple: RunningSimulator, mdm: MDMServer, tmp_path: Path
) -> None:
    device = _device_for(apple, mdm, tmp_path, is_mdm_removable=False)
    device.boot()
    with pytest.raises(RemovalRefused, match="unremovable"):
        device.remove_profile("com.example.mdm.enrollment", by_user=True)
    assert device.state.enrolled


def test_a_failed_connect_is_tried_again_later_without_another_push(
    apple: RunningSimulator, mdm: MDMServer, tmp_path: Path
) -> None:
    """iOS tries a failed connection again by itself: the server may have handed out a command in the response
    that never arrived, and has no reason to push again."""
    device = _device_for(apple, mdm, tmp_path)
    device.boot()
    token, magic = device.state.push_token, device.state.push_magic
    assert token and magic
    mdm.failing = True
    mdm.connected.clear()
    stop = threading.Event()
    waiter = threading.Thread(target=device.wait_for_pushes, args=(stop,), kwargs={"wait_seconds": 0.2})
    waiter.start()
    try:
        _push(apple, token, magic)
        assert mdm.failed.wait(WAIT_SECONDS)
        assert not mdm.connected.is_set()
        mdm.failing = False
        assert mdm.connected.wait(WAIT_SECONDS), "the device never came back by itself"
    finally:
        stop.set()
        waiter.join(WAIT_SECONDS)
    assert device.state.enrolled and not device.owes_poll
    assert apple.portal.get(f"/apns/tokens/{token}").json()["stats"]["received"] == 1, "one push, not two"


def test_removing_a_removable_enrollment_checks_out(apple: RunningSimulator, mdm: MDMServer, tmp_path: Path) -> None:
    device = _device_for(apple, mdm, tmp_path)
    device.boot()
    token = device.state.push_token
    device.remove_profile("com.example.mdm.enrollment", by_user=True)
    assert mdm.message_types() == ["Authenticate", "TokenUpdate", "Idle", "CheckOut"]
    assert not device.state.enrolled and device._states.load(device.serial_number).enrolled is False
    assert apple.portal.get(f"/apns/tokens/{token}").json()["unregistered_at"] is not None


def _command(request_type: str, uuid: str = "C-1", **arguments: Any) -> bytes:
    return plistlib.dumps({"CommandUUID": uuid, "Command": {"RequestType": request_type, **arguments}})


def test_a_device_shut_down_stays_off_until_switched_on_again(
    apple: RunningSimulator, mdm: MDMServer, tmp_path: Path
) -> None:
    device = _device_for(apple, mdm, tmp_path, is_supervised=True)
    device.boot()
    mdm.commands = [_command("ShutDownDevice")]
    assert device.serve() == 1
    assert mdm.message_types()[-2:] == ["Idle", "Acknowledged"]
    assert device.state.managed.powered_off and device._states.load(device.serial_number).managed.powered_off
    assert device.wait_for_pushes(threading.Event(), wait_seconds=1.0) == 0, "off: it waits for nothing"
    sent = len(mdm.messages)
    assert device.serve() == 0 and len(mdm.messages) == sent, "off: it does not connect"
    device.boot()
    assert not device.state.managed.powered_off and mdm.message_types()[-1] == "Idle"


def test_a_restarted_device_connects_again_and_takes_the_rest_of_the_queue(
    apple: RunningSimulator, mdm: MDMServer, tmp_path: Path
) -> None:
    device = _device_for(apple, mdm, tmp_path, is_supervised=True)
    device.boot()
    # This server hands nothing out in answer to the restart's report (Pippin would, and hand it out again later).
    mdm.commands = [_command("RestartDevice"), b"", _command("DeviceLock", "C-2")]
    assert device.serve() == 2
    assert mdm.message_types()[-4:] == ["Idle", "Acknowledged", "Idle", "Acknowledged"]
    assert device.state.managed.restarts == 1 and device.state.managed.locked


def test_the_server_removing_the_mdm_profile_unenrolls_the_device_with_what_mdm_installed(
    apple: RunningSimulator, mdm: MDMServer, tmp_path: Path
) -> None:
    device = _device_for(apple, mdm, tmp_path)
    device.boot()
    profile = plistlib.dumps(
        {
            "PayloadType": "Configuration",
            "PayloadIdentifier": "com.example.extra",
            "PayloadUUID": "9A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9",
            "PayloadVersion": 1,
            "PayloadContent": [],
        }
    )
    mdm.commands = [
        _command("InstallProfile", "C-1", Payload=profile),
        _command("RemoveProfile", "C-2", Identifier="com.example.mdm.enrollment"),
    ]
    device.serve()
    assert mdm.message_types()[-4:] == ["Idle", "Acknowledged", "Acknowledged", "CheckOut"]
    assert not device.state.enrolled and device.profiles.installed() == []
