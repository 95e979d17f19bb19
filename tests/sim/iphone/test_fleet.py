"""Many devices switched on together: never more in setup at once than asked, every outcome reported."""

from __future__ import annotations

import threading
from typing import Any, cast

import httpx
from sqlalchemy import update

from pippin.sim.iphone.device import SimulatedDevice
from pippin.sim.iphone.errors import SetupFailed
from pippin.sim.iphone.fleet import assigned_serials, boot_devices
from pippin.sim.models import SimDevice
from tests.sim.portal_client import assign, create_devices, create_server
from tests.simulator import RunningSimulator


class CountingDevice:
    """Stands in for a device in the pool: records how many boot at once; odd ones fail."""

    running = 0
    most = 0
    lock = threading.Lock()

    def __init__(self, index: int, gate: threading.Barrier) -> None:
        self.serial_number = f"S{index}"
        self.index = index
        self.gate = gate

    def boot(self) -> None:
        with CountingDevice.lock:
            CountingDevice.running += 1
            CountingDevice.most = max(CountingDevice.most, CountingDevice.running)
        try:
            self.gate.wait()  # every batch of devices is in setup together before any finishes
        finally:
            with CountingDevice.lock:
                CountingDevice.running -= 1
        if self.index % 2:
            raise SetupFailed("enrollment", "refused")


def test_devices_boot_at_most_concurrency_at_a_time_and_every_result_is_reported() -> None:
    gate = threading.Barrier(3, timeout=30)
    devices: list[Any] = [CountingDevice(i, gate) for i in range(9)]
    seen: list[str] = []
    results = boot_devices(
        cast(list[SimulatedDevice], devices), concurrency=3, on_result=lambda r: seen.append(r.serial_number)
    )
    assert CountingDevice.most == 3
    assert [r.enrolled for r in results] == [i % 2 == 0 for i in range(9)]
    assert results[1].step == "enrollment" and results[1].reason == "refused"
    assert sorted(seen) == sorted(d.serial_number for d in devices)


def test_assigned_serials_are_those_with_a_profile(sim: RunningSimulator) -> None:
    server = create_server(sim.portal)
    serials = create_devices(sim.portal, 4)
    assign(sim.portal, server, serials)
    with sim.state.transaction() as session:
        session.execute(
            update(SimDevice)
            .where(SimDevice.serial_number.in_(serials[:2]))
            .values(profile_uuid="P" * 32, profile_status="assigned")
        )
    with httpx.Client(base_url=sim.base_url) as client:
        assert assigned_serials(client, 10) == sorted(serials[:2])
        assert len(assigned_serials(client, 1)) == 1
