"""Simulated devices enrolled into a running Pippin answer the commands Pippin's own use case queued, on SQLite and
PostgreSQL, and Pippin stores what they said: the answers, the ErrorChains, the inventory a DeviceInformation fills.

The device is woken by calling :meth:`SimulatedDevice.serve`, what a push makes it do, so that the tests wait on
no APNs; one test goes the whole way, from Pippin's push through the simulated APNs to the waiting device.
"""

from __future__ import annotations

import plistlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from pippin.mdm.command_schemas import CommandRead
from pippin.mdm.command_sending import list_device_commands, send_command
from pippin.push.delivery import send_due_pushes
from pippin.sim.iphone.answer_rates import AnswerRates
from pippin.sim.iphone.device import MAX_SESSIONS_PER_WAKE, SimulatedDevice
from pippin.sim.iphone.device_facts import Hardware
from pippin.store.db import transaction
from pippin.store.models import Command, Enrollment, PushResult
from tests.actors import TEST_ACTOR
from tests.conftest import DATABASES, empty_database_url
from tests.e2e.seeded_pippin import SeededPippin, seeded_pippin
from tests.servers import resources_of

DEVICES = 6
#: An upper bound for a thread to react, never a timing the test measures.
WAIT_SECONDS = 30.0


@pytest.fixture(scope="module", params=DATABASES)
def pippin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededPippin]:
    directory = tmp_path_factory.mktemp(f"commands-{request.param}")
    url = empty_database_url(request, request.param, directory)
    with seeded_pippin(url, directory, devices=DEVICES, staff_devices=1) as seeded:
        yield seeded


def _enrolled(pippin: SeededPippin, **rates: Any) -> SimulatedDevice:
    serial = pippin.take()
    device = SimulatedDevice(
        sim_url=pippin.apple.base_url,
        serial_number=serial,
        states=pippin.states,
        trust=[pippin.pippin_ca],
        rates=AnswerRates(**rates),
    )
    device.boot()
    assert device.state.enrolled
    return device


def _send(pippin: SeededPippin, serial: str, request_type: str, **payload: object) -> str:
    resources = resources_of(pippin.server)
    with transaction(pippin.session_factory) as session:
        queued = send_command(
            session,
            serial=serial,
            request_type=request_type,
            payload=payload,
            box=resources.secret_box,
            settings=pippin.settings,
            now=datetime.now(UTC),
            actor=TEST_ACTOR,
        )
    return queued.command_uuid


def _commands(pippin: SeededPippin, serial: str) -> dict[str, CommandRead]:
    with transaction(pippin.session_factory) as session:
        listed = list_device_commands(session, serial=serial, box=resources_of(pippin.server).secret_box)
    return {command.command_uuid: command for command in listed}


def _enrollment(pippin: SeededPippin, serial: str) -> Enrollment:
    with transaction(pippin.session_factory) as session:
        (found,) = session.scalars(select(Enrollment).where(Enrollment.serial_number == serial)).all()
        session.expunge(found)
    return found


def _profile(identifier: str, *, payload_version: int = 1) -> bytes:
    return plistlib.dumps(
        {
            "PayloadType": "Configuration",
            "PayloadIdentifier": identifier,
            "PayloadUUID": "9A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9",
            "PayloadVersion": 1,
            "PayloadDisplayName": "Office Wi-Fi",
            "PayloadContent": [
                {
                    "PayloadType": "com.apple.wifi.managed",
                    "PayloadIdentifier": f"{identifier}.wifi",
                    "PayloadUUID": "1A2B3C4D-5E6F-4071-8293-A4B5C6D7E8F0",
                    "PayloadVersion": payload_version,
                    "SSID_STR": "Office",
                }
            ],
        },
        fmt=plistlib.FMT_XML,
    )


def test_inventory_a_profile_and_a_lock_queued_in_pippin_are_answered_and_pippin_stores_what_the_device_said(
    pippin: SeededPippin,
) -> None:
    device = _enrolled(pippin)
    serial, facts = device.serial_number, device.state.facts
    assert facts is not None
    information = _send(pippin, serial, "DeviceInformation")
    installed = _send(pippin, serial, "InstallProfile", Payload=_profile("com.example.wifi"))
    refused = _send(pippin, serial, "InstallProfile", Payload=_profile("com.example.bad", payload_version=2))
    locked = _send(pippin, serial, "DeviceLock", Message="Call IT on 1234")
    assert device.serve() == 4

    commands = _commands(pippin, serial)
    assert [commands[u].status for u in (information, installed, locked)] == ["acknowledged"] * 3
    assert commands[locked].response == {"MessageResult": "Success"}
    assert commands[refused].status == "error" and commands[refused].error_chain is not None
    assert [e["ErrorDomain"] for e in commands[refused].error_chain] == [
        "MCInstallationErrorDomain",
        "MCProfileErrorDomain",
    ]
    shown = commands[information].response
    assert shown is not None and shown["QueryResponses"]["SerialNumber"] == serial

    # Pippin's inventory holds what the device reported about itself.
    enrollment = _enrollment(pippin, serial)
    hardware = Hardware.of(facts)
    assert (enrollment.device_name, enrollment.model, enrollment.model_name) == (
        hardware.model_name,  # a device leaves the factory named "iPhone" or "iPad"
        hardware.model,
        hardware.model_name,
    )
    assert (enrollment.capacity_gb, enrollment.wifi_mac) == (hardware.capacity_gb, hardware.wifi_mac)
    assert enrollment.supervised is True and enrollment.lost_mode_enabled is False
    assert enrollment.imei == facts.imei and enrollment.os_version == facts.os_version

    # The device changed as iOS would, and remembers it when switched on again.
    again = pippin.states.load(serial)
    assert again.managed.locked and again.managed.lock_message == "Call IT on 1234"
    assert again.managed.managed_profiles == ["com.example.wifi"]
    assert device.profiles.find("com.example.wifi") is not None and device.profiles.find("com.example.bad") is None


def test_a_renamed_device_reports_its_new_name_to_pippin(pippin: SeededPippin) -> None:
    device = _enrolled(pippin)
    serial = device.serial_number
    _send(pippin, serial, "DeviceInformation")
    device.serve()  # Pippin now knows the device is supervised, which naming it needs
    renamed = _send(pippin, serial, "Settings", Settings=[{"Item": "DeviceName", "DeviceName": "Kiosk 1"}])
    information = _send(pippin, serial, "DeviceInformation")
    assert device.serve() == 2
    commands = _commands(pippin, serial)
    assert commands[renamed].status == "acknowledged" and commands[information].status == "acknowledged"
    assert commands[renamed].response == {"Settings": [{"Status": "Acknowledged"}]}
    assert _enrollment(pippin, serial).device_name == "Kiosk 1"


def test_an_erased_device_goes_through_setup_assistant_again_and_enrolls_again(pippin: SeededPippin) -> None:
    device = _enrolled(pippin)
    serial = device.serial_number
    magic, token = device.state.push_magic, device.state.push_token
    device.state.managed.locked = True
    erase = _send(pippin, serial, "EraseDevice")
    device.serve()

    assert _commands(pippin, serial)[erase].status == "acknowledged"
    state = pippin.states.load(serial)
    assert state.enrolled and state.managed.erasures == 1 and not state.managed.locked
    assert state.push_magic not in (None, magic) and state.push_token not in (None, token)
    enrollment = _enrollment(pippin, serial)
    assert (enrollment.status, enrollment.push_magic) == ("enrolled", state.push_magic)
    assert pippin.apple.portal.get(f"/apns/tokens/{token}").json()["unregistered_at"] is not None


def test_a_not_now_is_answered_for_real_at_the_next_connection(pippin: SeededPippin) -> None:
    device = _enrolled(pippin, not_now_rate=1.0, seed=3)
    serial = device.serial_number
    locked = _send(pippin, serial, "DeviceLock", Message="Back soon")
    assert device.serve() == 2, "put off, then run when the device connects again by itself"
    command = _commands(pippin, serial)[locked]
    assert command.status == "acknowledged" and command.response == {"MessageResult": "Success"}
    with transaction(pippin.session_factory) as session:
        stored = session.scalars(select(Command).where(Command.command_uuid == locked)).one()
        assert (stored.not_now_count, stored.deliveries) == (1, 2)


def test_a_device_that_put_off_more_than_one_wake_runs_polls_again_without_a_push(pippin: SeededPippin) -> None:
    """Pippin rightly sends no push after a NotNow (the device polls again by itself), so the device must."""
    device = _enrolled(pippin, not_now_rate=1.0, seed=5)
    serial = device.serial_number
    sent = [_send(pippin, serial, "DeviceLock", Message=f"Lock {n}") for n in range(MAX_SESSIONS_PER_WAKE + 2)]
    device.serve()
    assert device.owes_poll, "each session ran one command and put the next off: some are left"
    left = [
        uuid for uuid, command in _commands(pippin, serial).items() if uuid in sent and command.status != "acknowledged"
    ]
    assert left
    stop = threading.Event()
    waiter = threading.Thread(target=device.wait_for_pushes, args=(stop,), kwargs={"wait_seconds": 0.2})
    waiter.start()
    try:
        for _ in range(int(WAIT_SECONDS / 0.2)):
            if all(_commands(pippin, serial)[uuid].status == "acknowledged" for uuid in sent):
                break
            stop.wait(0.2)
    finally:
        stop.set()
        waiter.join(WAIT_SECONDS)
    assert all(_commands(pippin, serial)[uuid].status == "acknowledged" for uuid in sent)
    token = pippin.states.load(serial).push_token
    assert pippin.apple.portal.get(f"/apns/tokens/{token}").json()["stats"]["received"] == 0, "no push was sent"
    assert not device.owes_poll


def test_a_command_queued_in_pippin_reaches_the_waiting_device_by_push(pippin: SeededPippin) -> None:
    serial = pippin.take()
    stop = threading.Event()

    def answered(_serial: str, text: str) -> None:
        if text.startswith("answered DeviceLock"):
            stop.set()  # the device finishes this connection, then stops waiting

    device = SimulatedDevice(
        sim_url=pippin.apple.base_url,
        serial_number=serial,
        states=pippin.states,
        trust=[pippin.pippin_ca],
        progress=answered,
    )
    device.boot()
    locked = _send(pippin, serial, "DeviceLock", Message="Pushed")  # asks for a push in the same transaction
    waiter = threading.Thread(target=device.wait_for_pushes, args=(stop,), kwargs={"wait_seconds": 1.0})
    waiter.start()
    try:
        resources = resources_of(pippin.server)
        report = send_due_pushes(
            pippin.session_factory,
            sender=resources.apns,
            load_identity=resources.load_push_identity,
            record_certificate_refusal=resources.record_push_certificate_refusal,
            settings=pippin.settings,
        )
        # Earlier tests' commands asked for pushes too; every one is delivered.
        assert set(report.outcomes) == {PushResult.delivered}, report
        assert stop.wait(WAIT_SECONDS)
    finally:
        stop.set()
        waiter.join(WAIT_SECONDS)
    command = _commands(pippin, serial)[locked]
    assert command.status == "acknowledged" and command.response == {"MessageResult": "Success"}
    assert pippin.states.load(serial).managed.lock_message == "Pushed"
