"""Many simulated devices switched on at once, with bounded concurrency, and the serials to switch on.

Threads, not an event loop: each device is a sequence of blocking HTTP exchanges, as mdmb's goroutines are,
and ``concurrency`` bounds how many are in Setup Assistant together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from pippin.sim.iphone.device import SimulatedDevice
from pippin.sim.iphone.errors import SetupFailed

PAGE_SIZE = 1000
ASSIGNED_STATUSES = ("assigned", "pushed")


@dataclass(frozen=True)
class BootResult:
    serial_number: str
    enrolled: bool
    step: str | None = None
    reason: str | None = None


def boot_devices(
    devices: Sequence[SimulatedDevice],
    *,
    concurrency: int,
    stay: threading.Event | None = None,
    on_result: Callable[[BootResult], None] | None = None,
) -> list[BootResult]:
    """Boot every device, ``concurrency`` at a time; with ``stay``, enrolled ones then wait for pushes until it is set
    (a set event means "stop"; pass one not yet set)."""

    def run(device: SimulatedDevice) -> BootResult:
        try:
            device.boot()
        except SetupFailed as exc:
            result = BootResult(device.serial_number, enrolled=False, step=exc.step, reason=exc.reason)
        else:
            result = BootResult(device.serial_number, enrolled=True)
        if on_result is not None:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        results = list(pool.map(run, devices))
    if stay is not None:
        enrolled = [d for d, r in zip(devices, results, strict=True) if r.enrolled]
        with ThreadPoolExecutor(max_workers=max(1, len(enrolled))) as waiters:
            list(waiters.map(lambda device: device.wait_for_pushes(stay), enrolled))
    return results


def assigned_serials(sim: httpx.Client, count: int) -> list[str]:
    """Up to ``count`` serials of the simulator's devices that have a DEP profile assigned, in serial order."""
    found: list[str] = []
    cursor: str | None = None
    while len(found) < count:
        params: dict[str, str | int] = {"limit": PAGE_SIZE, **({"cursor": cursor} if cursor else {})}
        try:
            response = sim.get("/portal/devices", params=params)
        except httpx.HTTPError as exc:
            raise SetupFailed("devices", f"cannot reach the simulated Apple ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise SetupFailed("devices", f"the simulated Apple's device list answered HTTP {response.status_code}")
        page = response.json()
        for device in page.get("devices", []):
            if device.get("profile_uuid") and device.get("profile_status") in ASSIGNED_STATUSES:
                found.append(device["serial_number"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return found[:count]
