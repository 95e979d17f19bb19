"""Devices and assignment in the portal: generation, paging, edits, the three ways to assign, moves, bulk."""

from __future__ import annotations

import os
import random
import re
from datetime import UTC, datetime

from sqlalchemy import func, select

from pippin.sim.inventory import generate_devices
from pippin.sim.models import SimDevice, SimDeviceEvent, SimMDMServer
from tests.sim.portal_client import assign, create_devices, create_server
from tests.simulator import RunningSimulator


def _events(sim: RunningSimulator) -> list[tuple[str, str, str]]:
    """(server name, serial, op_type) in log order."""
    with sim.state.transaction() as session:
        rows = session.execute(
            select(SimMDMServer.name, SimDeviceEvent.serial_number, SimDeviceEvent.op_type)
            .join(SimMDMServer, SimMDMServer.id == SimDeviceEvent.server_id)
            .order_by(SimDeviceEvent.seq)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def _assigned_count(sim: RunningSimulator) -> int:
    with sim.state.transaction() as session:
        return session.scalar(select(func.count()).where(SimDevice.server_id.is_not(None))) or 0


def test_generated_devices_look_like_apples() -> None:
    rows = generate_devices(random.Random(3), count=400, now=datetime.now(UTC))
    assert {row["device_family"] for row in rows} == {"iPhone", "iPad"}
    for row in rows:
        assert re.fullmatch(r"[0-9A-Z]{10,12}", row["serial_number"])
        assert row["os"] == {"iPhone": "iOS", "iPad": "iPadOS"}[row["device_family"]]
        assert row["color"] in row["description"] and re.search(r"\d+(GB|TB)-[A-Z]{3}$", row["description"])
        assert re.fullmatch(r"W\d{9}", row["order_number"])
        assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", row["extra"]["wifi_mac_address"])
    phones = [row for row in rows if row["device_family"] == "iPhone"]
    assert all(len(row["extra"]["imei"]) == 2 and len(row["extra"]["eid"]) == 32 for row in phones)
    for imei in (imei for row in phones for imei in row["extra"]["imei"]):
        digits = [int(char) for char in imei]
        doubled = [sum(divmod(2 * digit, 10)) for digit in digits[-2::-2]]
        assert len(imei) == 15 and (sum(digits[-1::-2]) + sum(doubled)) % 10 == 0, f"{imei} fails Luhn"
    same = generate_devices(random.Random(3), count=400, now=rows[0]["created_at"])
    assert [row["serial_number"] for row in same] == [row["serial_number"] for row in rows], "a seed reproduces"


def test_create_with_order_and_family_then_page_through_without_overlap(sim: RunningSimulator) -> None:
    created = create_devices(sim.portal, 250, order_number="W123456789", family="iPad")
    assert len(set(created)) == 250
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 100, "order_number": "W123456789"}
        if cursor:
            params["cursor"] = cursor
        page = sim.portal.get("/portal/devices", params=params).json()
        assert page["total"] == 250
        seen += [device["serial_number"] for device in page["devices"]]
        assert all(device["model"].startswith("iPad") for device in page["devices"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(created)
    one = sim.portal.get("/portal/devices", params={"serial_number": created[0]}).json()
    assert one["total"] == 1 and one["devices"][0]["serial_number"] == created[0]
    assert sim.portal.get("/portal/devices", params={"limit": 5000}).status_code == 400
    assert sim.portal.get("/portal/devices", params={"cursor": "%%%"}).json()["error"] == "invalid_cursor"


def test_assigning_by_serials_emits_added_and_sets_the_record(sim: RunningSimulator) -> None:
    server = create_server(sim.portal, "A")
    serials = create_devices(sim.portal, 3)
    assert assign(sim.portal, server, serials) == {"server_uuid": server, "assigned": 3, "moved": 0, "unchanged": 0}
    assert assign(sim.portal, server, serials)["unchanged"] == 3
    device = sim.portal.get(f"/portal/devices/{serials[0]}").json()
    assert device["server_uuid"] == server and device["device_assigned_by"] == "admin@example.com"
    assert device["profile_status"] == "empty" and device["device_assigned_date"]
    assert _events(sim) == [("A", serial, "added") for serial in sorted(serials)], "one request, serial order"
    with sim.state.transaction() as session:
        rows = session.execute(
            select(SimDevice.assign_seq, SimDeviceEvent.seq).join(
                SimDeviceEvent, SimDeviceEvent.serial_number == SimDevice.serial_number
            )
        )
        assert all(assign_seq == seq for assign_seq, seq in rows)


def test_assigning_by_order_numbers(sim: RunningSimulator) -> None:
    server = create_server(sim.portal)
    ordered = create_devices(sim.portal, 4, order_number="W100000001")
    create_devices(sim.portal, 3, order_number="W100000002")
    response = sim.portal.post("/portal/assignments", json={"server_uuid": server, "order_numbers": ["W100000001"]})
    assert response.json()["assigned"] == 4
    listed = sim.portal.get("/portal/devices", params={"server_uuid": server}).json()
    assert sorted(device["serial_number"] for device in listed["devices"]) == sorted(ordered)
    unknown = sim.portal.post(
        "/portal/assignments", json={"server_uuid": server, "order_numbers": ["W100000002", "NOPE"]}
    )
    assert unknown.status_code == 400 and unknown.json()["problems"] == [
        {"order_number": "NOPE", "problem": "no devices in this order"}
    ]
    assert _assigned_count(sim) == 4


def test_assigning_from_csv_tolerates_header_crlf_and_blank_lines(sim: RunningSimulator) -> None:
    server = create_server(sim.portal)
    serials = create_devices(sim.portal, 3)
    body = "serial_number\r\n\r\n" + "\r\n".join(serials) + "\r\n\r\n"
    response = sim.portal.post("/portal/assignments/csv", params={"server_uuid": server}, content=body.encode())
    assert response.status_code == 200 and response.json()["assigned"] == 3


def test_a_bad_csv_assigns_nothing(sim: RunningSimulator) -> None:
    server = create_server(sim.portal)
    serials = create_devices(sim.portal, 2)
    bad_tails = [b"SERIAL1\nnot a serial!\n", b"A1,B2\n", b"\x00\x01binary", b"\xff\xfe\xfa", b'"open\n', b"NOSUCH1\n"]
    for tail in bad_tails:
        csv = "\n".join(serials).encode() + b"\n" + tail
        response = sim.portal.post("/portal/assignments/csv", params={"server_uuid": server}, content=csv)
        assert response.status_code == 400, tail
        assert response.json()["error"] in ("invalid_csv", "unknown_serials"), tail
    empty = sim.portal.post("/portal/assignments/csv", params={"server_uuid": server}, content=b"serial_number\r\n\r\n")
    assert empty.status_code == 400 and empty.json()["error"] == "no_serials"
    assert _assigned_count(sim) == 0 and _events(sim) == []


def test_a_bad_csv_line_is_reported_by_line_number(sim: RunningSimulator) -> None:
    server = create_server(sim.portal)
    serials = create_devices(sim.portal, 2)
    csv = f"serial_number\n{serials[0]}\nbad serial!\n{serials[1]}\n".encode()
    response = sim.portal.post("/portal/assignments/csv", params={"server_uuid": server}, content=csv)
    assert response.json()["problems"] == [{"line": 3, "value": "bad serial!", "problem": "not one serial number"}]


def test_an_unknown_serial_assigns_nothing(sim: RunningSimulator) -> None:
    server = create_server(sim.portal)
    serials = create_devices(sim.portal, 3)
    response = sim.portal.post("/portal/assignments", json={"server_uuid": server, "serials": [*serials, "UNKNOWN1"]})
    assert response.status_code == 400 and response.json()["error"] == "unknown_serials"
    assert response.json()["problems"][0]["serial_number"] == "UNKNOWN1"
    assert _assigned_count(sim) == 0 and _events(sim) == []


def test_moving_between_servers_deletes_on_one_and_is_modified_on_return(sim: RunningSimulator) -> None:
    a, b = create_server(sim.portal, "A"), create_server(sim.portal, "B")
    (serial,) = create_devices(sim.portal, 1)
    assign(sim.portal, a, [serial])
    assert assign(sim.portal, b, [serial])["moved"] == 1
    assign(sim.portal, a, [serial])
    assert _events(sim) == [
        ("A", serial, "added"),
        ("A", serial, "deleted"),
        ("B", serial, "added"),
        ("B", serial, "deleted"),
        ("A", serial, "modified"),  # Apple's oddity: back on a server it had been on (reference 8)
    ]
    assert sim.portal.get(f"/portal/devices/{serial}").json()["server_uuid"] == a


def test_unassigning_emits_deleted_and_clears_the_assignment(sim: RunningSimulator) -> None:
    server = create_server(sim.portal, "A")
    serials = create_devices(sim.portal, 2)
    assign(sim.portal, server, serials[:1])
    response = sim.portal.request("DELETE", "/portal/assignments", json={"serials": serials})
    assert response.json() == {"unassigned": 1, "unchanged": 1}
    assert _events(sim)[-1] == ("A", serials[0], "deleted")
    device = sim.portal.get(f"/portal/devices/{serials[0]}").json()
    assert device["server_uuid"] is None and device["device_assigned_date"] is None


def test_editing_an_assigned_device_is_modified_for_its_server(sim: RunningSimulator) -> None:
    server = create_server(sim.portal, "A")
    assigned, loose = create_devices(sim.portal, 2)
    assign(sim.portal, server, [assigned])
    response = sim.portal.patch(f"/portal/devices/{assigned}", json={"asset_tag": "TAG-1", "color": "RED"})
    assert response.status_code == 200 and response.json()["asset_tag"] == "TAG-1"
    assert sim.portal.patch(f"/portal/devices/{loose}", json={"asset_tag": "TAG-2"}).status_code == 200
    assert _events(sim) == [("A", assigned, "added"), ("A", assigned, "modified")]
    with sim.state.transaction() as session:
        snapshot = session.scalars(select(SimDeviceEvent.snapshot).order_by(SimDeviceEvent.seq.desc())).first()
    assert snapshot is not None and snapshot["asset_tag"] == "TAG-1" and snapshot["color"] == "RED"
    assert sim.portal.patch("/portal/devices/NOPE", json={"color": "RED"}).status_code == 404
    assert sim.portal.patch(f"/portal/devices/{loose}", json={"server_id": 1}).status_code == 400


def test_bulk_creation_and_assignment_in_requests_of_100000(sim: RunningSimulator) -> None:
    """Tens of thousands of devices are made and assigned in a few requests; how long that takes is measured by
    `bench/sim_fetch.py`, not here (a stopwatch on a shared machine fails for the wrong reasons)."""
    count = 200_000 if os.environ.get("PIPPIN_SLOW_TESTS") == "1" else 20_000
    server = create_server(sim.portal)
    serials: list[str] = []
    while len(serials) < count:
        serials += create_devices(sim.portal, min(100_000, count - len(serials)))
    assert len(set(serials)) == count
    for start in range(0, count, 100_000):
        assert assign(sim.portal, server, serials[start : start + 100_000])["assigned"] == len(
            serials[start : start + 100_000]
        )
    assert _assigned_count(sim) == count
