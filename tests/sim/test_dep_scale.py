"""A page costs time proportional to the page, not to the number of devices (keyset paging, reference 6)."""

from __future__ import annotations

import statistics
import time

from tests.sim.apple import DEPTestClient, ServerCredentials, seed_devices
from tests.simulator import RunningSimulator

DEVICES = 20_000
PAGE = 1000


def test_fetching_20000_devices_keeps_page_time_flat(
    apple: RunningSimulator, server: ServerCredentials, client: DEPTestClient
) -> None:
    serials = seed_devices(apple.state, server.server_id, DEVICES)
    timings: list[float] = []
    fetched: list[str] = []
    cursor = None
    while True:
        started = time.perf_counter()
        page = client.ok("POST", "/server/devices", json={"limit": PAGE, **({"cursor": cursor} if cursor else {})})
        timings.append(time.perf_counter() - started)
        fetched += [device["serial_number"] for device in page["devices"]]
        cursor = page["cursor"]
        if not page["more_to_follow"]:
            break
    assert fetched == serials
    assert len(timings) == DEVICES // PAGE
    first, last = statistics.median(timings[1:4]), statistics.median(timings[-3:])
    # Loose on purpose (a shared machine): an OFFSET scan would make the last page many times the first.
    assert last < first * 3 + 0.05, (first, last)
    sync = client.ok("POST", "/devices/sync", json={"cursor": cursor})
    assert sync["devices"] == [] and sync["more_to_follow"] is False
